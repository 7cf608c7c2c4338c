"""The PDF-analysis job type: check the document, analyse it, write the result JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap
from returns.result import Failure, Result, Success

from jobkit import _frozen, effects, errors, jobs, pipeline, registry, retry

NAME = "pdf-analysis"
DEFAULT_INSTRUCTIONS = (
    "Extract the document's title, authors, date and a short summary of its key points."
)
MAX_INSTRUCTIONS = 20_000
MAX_SCHEMA_BYTES = 32 * 1024
MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@/-]{0,127}$")
PARAMS = frozenset({"instructions", "schema", "model"})


def validate_params(params: Mapping[str, Any]) -> Result[PMap[str, Any], errors.Invalid]:
    """The parameters of any deployment: a well-formed `model`, whichever it names."""
    return checked_params(params, models=None)


def checked_params(
    params: Mapping[str, Any], *, models: frozenset[str] | None
) -> Result[PMap[str, Any], errors.Invalid]:
    """`params` checked; `model`, when given, must also be one of `models` (None: any)."""
    problems = [
        errors.Problem(field=name, message="unknown parameter")
        for name in sorted(set(params) - PARAMS)
    ]
    instructions = params.get("instructions", DEFAULT_INSTRUCTIONS)
    if not isinstance(instructions, str) or not 0 < len(instructions.strip()) <= MAX_INSTRUCTIONS:
        message = f"must be a non-empty string of at most {MAX_INSTRUCTIONS} characters"
        problems.append(errors.Problem(field="instructions", message=message))
    schema = params.get("schema")
    if schema is not None:
        if not isinstance(schema, Mapping) or not isinstance(schema.get("type"), str):
            message = 'must be a JSON Schema object with a "type", e.g. {"type": "object"}'
            problems.append(errors.Problem(field="schema", message=message))
        elif len(json.dumps(_frozen.thaw(schema))) > MAX_SCHEMA_BYTES:  # params come frozen
            problems.append(
                errors.Problem(field="schema", message=f"at most {MAX_SCHEMA_BYTES} bytes")
            )
    model = params.get("model")
    if model is not None and (not isinstance(model, str) or not MODEL.fullmatch(model)):
        problems.append(errors.Problem(field="model", message=f"must match {MODEL.pattern}"))
    elif model is not None and models is not None and model not in models:
        allowed = ", ".join(sorted(models))
        problems.append(errors.Problem(field="model", message=f"must be one of: {allowed}"))
    if problems:
        return Failure(errors.Invalid(problems=tuple(problems)))
    checked = {"instructions": instructions}
    if schema is not None:
        checked["schema"] = schema
    if model is not None:
        checked["model"] = model
    return Success(pmap(checked))


def analyze_pdf(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    source = jobs.input(job)
    if source is None:
        return Failure(errors.permanent("invalid_input", "the job has no input document"))
    key = source.blob
    params = jobs.params(job)
    yield effects.ReportProgress(current=0, total=1, message="checking the document")
    info: effects.BlobInfo = yield effects.StatBlob(key=key)
    yield effects.ReportProgress(current=0, total=1, message="analysing")
    analysis: effects.Analysis = yield effects.Analyze(
        key=key,
        content_type=info.content_type,
        instructions=params.get("instructions", DEFAULT_INSTRUCTIONS),
        schema=params.get("schema"),
        model=params.get("model"),
    )
    document = {
        "jobId": jobs.id(job),
        "attempt": claim,
        "model": analysis.model,
        "document": {
            "filename": source.filename,
            "bytes": info.size,
            "pages": analysis.pages,
            **_frozen.thaw(analysis.document),
        },
        "output": _frozen.thaw(analysis.output),
        "usage": _frozen.thaw(analysis.usage),
    }
    if analysis.model_version is not None:
        document["modelVersion"] = analysis.model_version
    if analysis.finish_reason is not None:
        document["finishReason"] = analysis.finish_reason
    if analysis.cost is not None:
        document["cost"] = _frozen.thaw(analysis.cost)
    written: effects.BlobInfo = yield effects.WriteBlob(
        key=pipeline.result_key(job, claim),
        data=json.dumps(document, ensure_ascii=False, indent=2).encode(),
        content_type="application/json",
    )
    # In the analyzer's units (pages, when it reported them), so the count does not go back.
    pages = analysis.pages or 1
    yield effects.ReportProgress(current=pages, total=pages, message="result saved")
    summary: dict[str, Any] = {"model": analysis.model, "pages": analysis.pages, "bytes": info.size}
    if analysis.cost is not None:  # a billed model: what the job spent, on the job itself
        summary["usage"] = _frozen.thaw(analysis.usage)
        summary["cost"] = _frozen.thaw(analysis.cost)
    return Success(pipeline.Completion(result=summary, document=written))


def job_type(*, models: frozenset[str] | None = None) -> registry.JobType:
    """The job type; with `models`, a submission's `model` must be one of them (a deployment
    whose analyzer serves only some models builds it so, in its composition root)."""
    if models is None:
        return JOB_TYPE
    if not models:
        raise errors.ConfigurationError("the allowed models must name at least one model")

    def validate(params: Mapping[str, Any]) -> Result[PMap[str, Any], errors.Invalid]:
        return checked_params(params, models=models)

    return attrs.evolve(JOB_TYPE, validate_params=validate)


JOB_TYPE = registry.JobType(
    name=NAME,
    pipeline=analyze_pdf,
    validate_params=validate_params,
    retry=retry.RetryPolicy(
        max_attempts=5,
        backoff=retry.Backoff(base=5.0, factor=2.0, cap=600.0),
        overrides={"rate_limited": retry.Backoff(base=30.0, factor=2.0, cap=1800.0)},
    ),
    priority=50,
    queue="default",
    timeout_seconds=900.0,
    input_required=True,
    description="Analyse a PDF document with a language model and store the result as JSON.",
)
