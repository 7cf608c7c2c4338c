"""Job types from installed packages: the `jobkit.job_types` entry-point group (shell: reads
the environment's package metadata)."""

from __future__ import annotations

from importlib import metadata

from jobkit import errors, registry

GROUP = "jobkit.job_types"


def discover(group: str = GROUP) -> registry.Registry:
    """Every job type declared under `group`; an entry point that is not a `JobType` is refused.

    A package adds a job type with, in its pyproject.toml:
    `[project.entry-points."jobkit.job_types"] my-type = "my_pkg.jobs:JOB_TYPE"`.
    """
    found: list[registry.JobType] = []
    for entry in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        value = entry.load()
        if not isinstance(value, registry.JobType):
            raise errors.ConfigurationError(
                f"entry point {entry.name} = {entry.value} is not a JobType: {value!r}"
            )
        if value.name != entry.name:
            raise errors.ConfigurationError(
                f"entry point {entry.name} names job type {value.name!r}: the names must match"
            )
        found.append(value)
    return registry.of(found)
