"""Every way a Gemini call can go wrong, through the real client against the stub: each
becomes a named error value, transient or permanent, after exactly one request (the SDK's
own retries are off), or before any request when the document cannot be sent."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure

from jobkit import errors
from tests.jobkit_gcp import support
from tests.jobkit_gcp.gemini_server import (
    GeminiServer,
    Reply,
    answer,
    empty,
    error,
    prompt_blocked,
    rate_limited,
)

GOOD = {"risks": ["fire"]}

CASES: dict[str, tuple[Reply, str, bool]] = {
    "429 with a retry delay": (rate_limited("37s"), "rate_limited", True),
    "429 without one": (rate_limited(), "rate_limited", True),
    "500": (error(500, "INTERNAL", "Internal error encountered."), "unavailable", True),
    "503": (error(503, "UNAVAILABLE", "The model is overloaded."), "unavailable", True),
    "504": (error(504, "DEADLINE_EXCEEDED", "Deadline exceeded."), "timeout", True),
    "400": (error(400, "INVALID_ARGUMENT", "The document has no pages."), "invalid_request", False),
    "400 on the schema": (
        error(400, "INVALID_ARGUMENT", "Invalid JSON payload: response_json_schema.type"),
        "invalid_schema",
        False,
    ),
    "401": (
        error(401, "UNAUTHENTICATED", "Request had invalid credentials."),
        "unauthenticated",
        False,
    ),
    "403": (
        error(403, "PERMISSION_DENIED", "Vertex AI API has not been used."),
        "permission_denied",
        False,
    ),
    "404": (error(404, "NOT_FOUND", "Publisher model not found."), "model_not_found", False),
    "safety block of the prompt": (prompt_blocked(), "content_blocked", False),
    "safety stop of the answer": (answer(GOOD, finish="SAFETY"), "content_blocked", False),
    "truncated answer": (answer('{"risks": ["fi', finish="MAX_TOKENS"), "output_truncated", False),
    "other finish reason": (answer(GOOD, finish="OTHER"), "unexpected_finish", True),
    "empty answer": (empty(), "empty_answer", True),
    "blank text": (answer("  "), "empty_answer", True),
    "malformed JSON": (answer('{"risks": ["fire"'), "malformed_answer", True),
    "JSON off the schema": (answer({"risks": "fire"}), "schema_mismatch", False),
    "garbled body": (Reply(text="<html>bad gateway</html>"), "unavailable", True),
    "slow answer": (Reply(body={}, delay=3.0), "timeout", True),
}


@pytest.mark.parametrize("mode", ["vertex", "developer"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_is_a_named_error_after_one_request(
    case: str, mode: str, gemini: GeminiServer, tmp_path: Path
) -> None:
    reply, code, retryable = CASES[case]
    gemini.script(reply)
    config = (support.vertex if mode == "vertex" else support.developer)(
        gemini, timeout_seconds=1.0
    )
    outcome = support.run(
        support.analyzer(support.store(tmp_path), config, gemini), support.effect()
    )
    match outcome:
        case Failure(err):
            pass
        case _:
            pytest.fail(f"expected {code}, got {outcome}")
    assert (err.code, err.retryable) == (code, retryable), err
    assert errors.classify(err) is retryable
    assert gemini.count() == 1, "the SDK's retries are off: one attempt, one request"
    assert gemini.refused == []


def test_a_429s_retry_delay_is_kept_for_the_retry_policy(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(rate_limited("37s"))
    err = support.run(
        support.analyzer(support.store(tmp_path), support.vertex(gemini), gemini),
        support.effect(),
    ).failure()
    assert err.context[errors.RETRY_AFTER] == 37.0


def test_a_429s_retry_after_header_counts_when_there_is_no_retry_info(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    throttled = error(
        429, "RESOURCE_EXHAUSTED", "Quota exceeded.", headers=(("Retry-After", "12"),)
    )
    gemini.script(throttled)
    err = support.run(
        support.analyzer(support.store(tmp_path), support.developer(gemini), gemini),
        support.effect(),
    ).failure()
    assert err.context[errors.RETRY_AFTER] == 12.0


def test_a_failed_answer_records_the_tokens_it_was_billed_for(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(answer({"risks": "fire"}, prompt_tokens=900, output_tokens=12))
    err = support.run(
        support.analyzer(support.store(tmp_path), support.vertex(gemini), gemini),
        support.effect(),
    ).failure()
    assert err.context["usage"] == {"promptTokens": 900, "outputTokens": 12, "totalTokens": 912}


def test_an_unreachable_gemini_is_unavailable(gemini: GeminiServer, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = support.vertex(gemini, base_url=closed)
    err = support.run(
        support.analyzer(support.store(tmp_path), config, gemini), support.effect()
    ).failure()
    assert (err.code, err.retryable) == ("unavailable", True)


# -- refused before any call ------------------------------------------------------------


def _refused(tmp_path: Path, gemini: GeminiServer, data: bytes, **options: Any) -> errors.Error:
    config = support.vertex(gemini, **options.pop("config", {}))
    err = support.run(
        support.analyzer(support.store(tmp_path, data), config, gemini),
        support.effect(**options),
    ).failure()
    assert gemini.count() == 0, "refused before any call"
    assert not err.retryable
    return err


def test_more_pages_than_the_model_reads_fail_at_once(gemini: GeminiServer, tmp_path: Path) -> None:
    err = _refused(tmp_path, gemini, support.pdf(6), config={"max_pages": 5})
    assert err.code == "too_many_pages"
    assert err.context["pages"] == 6


def test_a_document_over_the_size_limit_fails_at_once(gemini: GeminiServer, tmp_path: Path) -> None:
    err = _refused(tmp_path, gemini, support.SAMPLE, config={"max_bytes": 1000})
    assert err.code == "document_too_large"


def test_a_damaged_pdf_fails_at_once(gemini: GeminiServer, tmp_path: Path) -> None:
    err = _refused(tmp_path, gemini, b"%PDF-1.7\n" + bytes(range(256)) * 4)
    assert err.code == "corrupt_document"


def test_a_password_protected_pdf_fails_at_once(gemini: GeminiServer, tmp_path: Path) -> None:
    import io

    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(support.SAMPLE))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    locked = io.BytesIO()
    writer.write(locked)
    err = _refused(tmp_path, gemini, locked.getvalue())
    assert err.code == "encrypted_document"


def test_a_schema_that_is_not_json_schema_fails_at_once(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    err = _refused(tmp_path, gemini, support.SAMPLE, schema={"type": "object", "required": 5})
    assert err.code == "invalid_schema"


def test_a_model_outside_the_allow_list_fails_at_once(gemini: GeminiServer, tmp_path: Path) -> None:
    err = _refused(tmp_path, gemini, support.SAMPLE, model="gemini-1.5-pro")
    assert err.code == "model_not_allowed"


def test_a_missing_document_is_not_found(gemini: GeminiServer, tmp_path: Path) -> None:
    config = support.vertex(gemini)
    err = support.run(
        support.analyzer(support.store(tmp_path), config, gemini),
        support.effect(key="inputs/nobody/document.pdf"),
    ).failure()
    assert (err.code, err.retryable) == ("not_found", False)
