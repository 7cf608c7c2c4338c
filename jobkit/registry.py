"""The job-type registry: name -> params validation, pipeline, retry policy and defaults."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap
from returns.result import Failure, Result, Success

from jobkit import errors, pipeline, retry

NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")

ParamsValidator = Callable[[Mapping[str, Any]], Result[PMap[str, Any], errors.Invalid]]


def accept_any(params: Mapping[str, Any]) -> Result[PMap[str, Any], errors.Invalid]:
    return Success(pmap(params))


@attrs.frozen(kw_only=True)
class JobType:
    """Everything jobkit knows about one kind of job.

    `pipeline(job, claim)` builds the generator for one attempt; `input_required`
    says that submissions must carry an input document (a file upload).
    """

    name: str
    pipeline: pipeline.PipelineFactory
    validate_params: ParamsValidator = accept_any
    retry: retry.RetryPolicy = attrs.field(factory=retry.RetryPolicy)
    priority: int = 50
    queue: str = "default"
    timeout_seconds: float = 900.0
    input_required: bool = False
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise errors.ConfigurationError(
                f"job type name {self.name!r} must match {NAME.pattern}"
            )
        if not 0 <= self.priority <= 100:
            raise errors.ConfigurationError(f"{self.name}: priority must be within 0..100")
        if self.timeout_seconds <= 0:
            raise errors.ConfigurationError(f"{self.name}: timeout_seconds must be > 0")


@attrs.frozen
class Registry:
    """The installed job types by name: a read-only mapping (a job's type is looked up on
    every claim and every submission, and a plain mapping's lookup is the cheapest)."""

    types: Mapping[str, JobType] = attrs.field(factory=lambda: MappingProxyType({}))


def of(job_types: Iterable[JobType]) -> Registry:
    registry = Registry()
    for job_type in job_types:
        registry = register(registry, job_type)
    return registry


def register(registry: Registry, job_type: JobType) -> Registry:
    if job_type.name in registry.types:
        raise errors.ConfigurationError(f"job type {job_type.name!r} is registered twice")
    return Registry(MappingProxyType({**registry.types, job_type.name: job_type}))


def replace(registry: Registry, job_type: JobType) -> Registry:
    """`registry` with `job_type` in place of the type of its name, or added: a deployment's
    variant of an installed type (the PDF type with the models its analyzer serves)."""
    return Registry(MappingProxyType({**registry.types, job_type.name: job_type}))


def lookup(registry: Registry, name: str) -> Result[JobType, errors.Invalid]:
    job_type = registry.types.get(name)
    if job_type is None:
        known = ", ".join(sorted(registry.types)) or "none"
        return Failure(errors.invalid("type", f"unknown job type {name!r} (known: {known})"))
    return Success(job_type)


def get(registry: Registry, name: str) -> JobType:
    """The type of a stored job; a job whose type is no longer installed is a deployment bug."""
    job_type = registry.types.get(name)
    if job_type is None:
        raise errors.ConfigurationError(f"job type {name!r} is not installed")
    return job_type


def names(registry: Registry) -> list[str]:
    return sorted(registry.types)
