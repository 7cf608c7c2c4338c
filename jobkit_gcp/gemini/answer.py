"""Gemini's answer checked: JSON, matching the job's schema, made an `Analysis`; and the
schema itself checked before any call."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from google.genai import types
from returns.result import Failure, Result, Success

from jobkit import effects, errors
from jobkit_gcp.gemini import classify, request


def check_schema(effect: effects.Analyze) -> errors.Error | None:
    schema = request.schema_of(effect)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        return errors.permanent(
            "invalid_schema", f"the schema is not a valid JSON Schema: {e.message}"
        )
    return None


def analysis(
    response: types.GenerateContentResponse,
    ask: request.Request,
    model: str,
    pages: int,
    used: dict[str, int],
    cost: dict[str, Any],
) -> Result[effects.Analysis, errors.Error]:
    outcome = classify.from_response(response)
    if isinstance(outcome, errors.Error):
        return Failure(_with_usage(outcome, used))
    text, finish = outcome
    try:
        parsed = json.loads(text)
    except ValueError as e:
        return Failure(
            _with_usage(
                errors.transient("malformed_answer", f"Gemini's answer is not JSON: {e}"), used
            )
        )
    validator = jsonschema.validators.validator_for(ask.schema)(ask.schema)
    mismatch = jsonschema.exceptions.best_match(validator.iter_errors(parsed))
    if mismatch is not None:
        where = "/".join(str(step) for step in mismatch.absolute_path) or "(the whole answer)"
        return Failure(
            _with_usage(
                errors.permanent(
                    "schema_mismatch",
                    f"Gemini's answer does not match the schema at {where}: {mismatch.message}",
                ),
                used,
            )
        )
    return Success(
        effects.Analysis(
            model=model,
            output=parsed,
            pages=pages,
            usage=used,
            model_version=response.model_version,
            finish_reason=finish,
            cost=cost,
        )
    )


def _with_usage(err: errors.Error, used: dict[str, int]) -> errors.Error:
    """A failed answer was still paid for: its usage goes into the error's context."""
    return errors.error(
        err.code, err.message, retryable=err.retryable, context={**err.context, "usage": used}
    )
