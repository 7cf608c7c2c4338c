"""Gemini's failures as the core's error values, with a class the retry policy understands.

The table (docs/explanation/errors.md explains each choice):

| what happened                                   | code                    | retried |
|-------------------------------------------------|-------------------------|---------|
| 429 / RESOURCE_EXHAUSTED (its retry delay kept) | `rate_limited`          | yes     |
| 500, 502, 503, other 5xx, a garbled answer      | `unavailable`           | yes     |
| 504 / DEADLINE_EXCEEDED, 408, our own timeout   | `timeout`               | yes     |
| connection refused or reset, a token not issued | `unavailable`           | yes     |
| 400 naming the schema                           | `invalid_schema`        | no      |
| other 400 / INVALID_ARGUMENT, other 4xx         | `invalid_request`       | no      |
| 401 / UNAUTHENTICATED, credentials refused      | `unauthenticated`       | no      |
| 403 / PERMISSION_DENIED                         | `permission_denied`     | no      |
| 404 / NOT_FOUND (the model, or the file)        | `model_not_found`       | no      |
| 413                                             | `document_too_large`    | no      |
| the prompt or the answer blocked for safety     | `content_blocked`       | no      |
| the answer cut at the output limit (MAX_TOKENS) | `output_truncated`      | no      |
| another unexpected finish reason                | `unexpected_finish`     | yes     |
| no answer at all                                | `empty_answer`          | yes     |
| an answer that is not JSON                      | `malformed_answer`      | yes     |
| JSON that does not match the schema             | `schema_mismatch`       | no      |
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import httpx
from google.auth import exceptions as auth_errors
from google.genai import errors as genai_errors
from google.genai import types

from jobkit import errors

_HTTP: list[Any] = [httpx]
with contextlib.suppress(ImportError):  # the SDK's client may be built on httpx's fork
    import httpx2

    _HTTP.append(httpx2)

_TIMEOUTS: tuple[type[BaseException], ...] = (
    TimeoutError,
    *(m.TimeoutException for m in _HTTP),
)
_NETWORK: tuple[type[BaseException], ...] = (
    ConnectionError,
    *(m.TransportError for m in _HTTP),
    auth_errors.TransportError,
)

BLOCKED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def from_exception(exc: BaseException, model: str) -> errors.Error | None:
    """The error value for an exception the SDK raised; None for one we do not expect."""
    if isinstance(exc, genai_errors.APIError):
        return from_api_error(exc, model)
    if isinstance(exc, _TIMEOUTS):
        return errors.transient("timeout", f"Gemini did not answer in time ({_name(exc)})")
    if isinstance(exc, auth_errors.RefreshError):
        return _credentials(exc)
    if isinstance(exc, auth_errors.DefaultCredentialsError):
        return errors.permanent(
            "unauthenticated", f"no Google credentials were found for Vertex AI: {exc}"
        )
    if isinstance(exc, _NETWORK):
        return errors.transient("unavailable", f"could not reach Gemini: {_name(exc)}: {exc}")
    # A body that is not JSON (a proxy's error page): the SDK raises the decoder's error.
    if isinstance(exc, genai_errors.UnknownApiResponseError | json.JSONDecodeError):
        return errors.transient("unavailable", f"Gemini's answer was not readable: {exc}")
    return None


def from_api_error(exc: genai_errors.APIError, model: str) -> errors.Error:
    code = exc.code
    status = exc.status or ""
    said = exc.message or str(exc)
    context = {"httpStatus": code, "status": status}
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        delay = retry_delay(exc)
        if delay is not None:
            context[errors.RETRY_AFTER] = delay
        return errors.transient("rate_limited", f"Gemini's quota is exhausted: {said}", **context)
    if code in {408, 504} or status == "DEADLINE_EXCEEDED":
        return errors.transient("timeout", f"Gemini timed out: {said}", **context)
    if code >= 500:
        return errors.transient(
            "unavailable", f"Gemini failed ({code} {status}): {said}", **context
        )
    if code == 401 or status == "UNAUTHENTICATED":
        return errors.permanent(
            "unauthenticated", f"Gemini refused the credentials: {said}", **context
        )
    if code == 403 or status == "PERMISSION_DENIED":
        return errors.permanent(
            "permission_denied", f"not allowed to call {model}: {said}", **context
        )
    if code == 404 or status == "NOT_FOUND":
        return errors.permanent("model_not_found", f"{model} was not found: {said}", **context)
    if code == 413:
        return errors.permanent("document_too_large", f"Gemini refused the size: {said}", **context)
    if "schema" in said.lower():
        return errors.permanent("invalid_schema", f"Gemini refused the schema: {said}", **context)
    return errors.permanent("invalid_request", f"Gemini refused the request: {said}", **context)


def retry_delay(exc: genai_errors.APIError) -> float | None:
    """The wait a 429 asks for: its `RetryInfo` detail (`"37s"`), else a `Retry-After` header."""
    details = exc.details if isinstance(exc.details, dict) else {}
    inner = details.get("error", details)
    for detail in inner.get("details", []) if isinstance(inner, dict) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            matched = _DURATION.match(str(detail.get("retryDelay", "")))
            if matched:
                return float(matched.group(1))
    header = getattr(getattr(exc, "response", None), "headers", {}).get("retry-after")
    try:
        return float(header) if header is not None else None
    except ValueError:  # an HTTP date: rare from Google, and the backoff covers it
        return None


def from_response(response: types.GenerateContentResponse) -> tuple[str, str] | errors.Error:
    """The answer's text and finish reason, or why there is no usable answer."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = _enum_name(feedback.block_reason)
        return errors.permanent(
            "content_blocked",
            f"Gemini refused the document or instructions ({reason}):"
            f" {feedback.block_reason_message or 'no reason given'}",
            blockReason=reason,
        )
    candidates = response.candidates or []
    if not candidates:
        return errors.transient("empty_answer", "Gemini answered with no candidate")
    candidate = candidates[0]
    finish = _enum_name(candidate.finish_reason) if candidate.finish_reason else "STOP"
    if finish in BLOCKED:
        return errors.permanent(
            "content_blocked",
            f"Gemini stopped its answer ({finish}): {candidate.finish_message or 'blocked'}",
            finishReason=finish,
        )
    if finish == "MAX_TOKENS":
        return errors.permanent(
            "output_truncated",
            "Gemini's answer was cut off at the output token limit; ask for less, or raise"
            " JOBKIT_GEMINI_MAX_OUTPUT_TOKENS",
            finishReason=finish,
        )
    if finish not in {"STOP", "FINISH_REASON_UNSPECIFIED"}:
        return errors.transient(
            "unexpected_finish", f"Gemini's answer ended with {finish}", finishReason=finish
        )
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text.strip():
        return errors.transient("empty_answer", "Gemini's answer had no text", finishReason=finish)
    return text, finish


def _credentials(exc: auth_errors.RefreshError) -> errors.Error:
    # Refreshing through the metadata server wraps its outages in RefreshError.
    if exc.retryable or isinstance(exc.__cause__, auth_errors.TransportError):
        return errors.transient("unavailable", f"could not get an access token: {exc}")
    return errors.permanent("unauthenticated", f"Google refused the credentials: {exc}")


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value))
