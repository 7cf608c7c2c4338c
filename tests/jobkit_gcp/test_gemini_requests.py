"""The real google-genai client against the stub Gemini: what reaches the API, in Vertex AI
and developer mode, and the answer as an `Analysis` with its usage and cost."""

from __future__ import annotations

from pathlib import Path

from returns.result import Success

from jobkit_gcp.gemini import request
from tests.jobkit_gcp import support
from tests.jobkit_gcp.gemini_server import GeminiServer, answer

RISKS = {"risks": ["flooding", "fire"]}
STRUCTURED = {
    "title": "Sample",
    "authors": ["jobkit"],
    "date": "2025-01-01",
    "summary": "A sample.",
    "keyPoints": ["one"],
}


def test_vertex_sends_the_pdf_inline_with_the_instructions_and_the_schema(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(answer(RISKS, prompt_tokens=1700, output_tokens=40, thoughts_tokens=300))
    config = support.vertex(gemini)
    outcome = support.run(
        support.analyzer(support.store(tmp_path), config, gemini), support.effect()
    )

    [call] = gemini.calls
    assert call.mode == "vertex"
    assert call.path.endswith(
        "/projects/test-project/locations/us-central1/publishers/google/models/"
        "gemini-3.1-pro-preview:generateContent"
    )
    assert call.headers["authorization"] == "Bearer vertex-token"
    assert call.mime_type() == "application/pdf"
    assert call.inline_bytes() == support.SAMPLE
    assert call.prompt() == support.INSTRUCTIONS
    assert call.body["systemInstruction"]["parts"][0]["text"] == request.SYSTEM_INSTRUCTION
    assert call.generation() == {
        "responseMimeType": "application/json",
        "responseJsonSchema": support.SCHEMA,
        "maxOutputTokens": config.max_output_tokens,
    }
    match outcome:
        case Success(analysis):
            pass
    assert analysis.output == RISKS
    assert analysis.model == "gemini-3.1-pro-preview"
    assert analysis.model_version == "gemini-3.1-pro-preview-001"
    assert analysis.finish_reason == "STOP"
    assert analysis.pages == 3
    assert dict(analysis.usage) == {
        "promptTokens": 1700,
        "outputTokens": 40,
        "thoughtsTokens": 300,
        "totalTokens": 2040,
    }
    # 1700 in at $2/M, 340 out (answer and thinking) at $12/M
    assert analysis.cost is not None
    assert analysis.cost["amount"] == round((1700 * 2 + 340 * 12) / 1e6, 6)
    assert analysis.cost["currency"] == "USD"


def test_vertex_hands_a_cloud_storage_document_over_by_its_gs_location(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(answer(RISKS))
    blobs = support.store(tmp_path, gcs=True)
    outcome = support.run(support.analyzer(blobs, support.vertex(gemini), gemini), support.effect())
    assert isinstance(outcome, Success)
    [call] = gemini.calls
    assert "inlineData" not in call.document()
    assert call.file_uri() == f"gs://jobkit-test-bucket/{support.KEY}"
    assert call.mime_type() == "application/pdf"


def test_without_a_schema_the_default_structure_is_asked_for(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(answer(STRUCTURED))
    outcome = support.run(
        support.analyzer(support.store(tmp_path), support.vertex(gemini), gemini),
        support.effect(schema=None),
    )
    assert outcome.unwrap().output == STRUCTURED
    assert gemini.calls[0].generation()["responseJsonSchema"] == request.DEFAULT_SCHEMA


def test_a_job_may_ask_for_another_allowed_model(gemini: GeminiServer, tmp_path: Path) -> None:
    gemini.script(answer(STRUCTURED))
    config = support.vertex(gemini, models=frozenset({"gemini-3.8-flash"}))
    outcome = support.run(
        support.analyzer(support.store(tmp_path), config, gemini),
        support.effect(schema=None, model="gemini-3.8-flash"),
    )
    assert gemini.calls[0].model == "gemini-3.8-flash"
    assert outcome.unwrap().model == "gemini-3.8-flash"


def test_the_developer_api_gets_the_key_and_inline_bytes(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(answer(RISKS))
    outcome = support.run(
        support.analyzer(support.store(tmp_path), support.developer(gemini), gemini),
        support.effect(),
    )
    assert outcome.unwrap().output == RISKS
    [call] = gemini.calls
    assert call.mode == "developer"
    assert call.path.endswith("/models/gemini-3.1-pro-preview:generateContent")
    assert call.headers["x-goog-api-key"] == gemini.api_key
    assert "authorization" not in call.headers
    assert call.inline_bytes() == support.SAMPLE


def test_the_developer_api_uploads_a_document_past_the_inline_limit_then_deletes_it(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    gemini.script(answer(RISKS))
    gemini.file_state = "PROCESSING"  # the analyzer must wait for it to become ACTIVE
    config = support.developer(gemini, inline_max_bytes=1000)
    outcome = support.run(
        support.analyzer(support.store(tmp_path), config, gemini), support.effect()
    )
    assert outcome.unwrap().output == RISKS
    [(name, uploaded)] = gemini.uploads.items()
    assert uploaded == support.SAMPLE
    assert gemini.calls[0].file_uri() == f"{gemini.base_url}/v1beta/files/{name}"
    assert gemini.calls[0].mime_type() == "application/pdf"
    assert gemini.deleted == [name]


def test_vertex_refuses_a_document_past_the_inline_limit_outside_cloud_storage(
    gemini: GeminiServer, tmp_path: Path
) -> None:
    config = support.vertex(gemini, inline_max_bytes=1000)
    outcome = support.run(
        support.analyzer(support.store(tmp_path), config, gemini), support.effect()
    )
    assert outcome.failure().code == "document_too_large"
    assert gemini.calls == []
