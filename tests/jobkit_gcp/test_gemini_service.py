"""The whole service with Gemini: `jobkit serve` with `JOBKIT_ANALYZER=gemini` as a real
process, on Vertex AI with Application Default Credentials resolved as on Cloud Run (from
the stub metadata server), against the stub Gemini. A PDF is uploaded over HTTP with
instructions and a schema, polled, and its structured result read back.

The auth library reads where the metadata server is once, when it is first imported, so
these run in their own processes, whose environment says it from the start.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from tests.jobkit_gcp import support
from tests.jobkit_gcp.conftest import isolated_environ
from tests.jobkit_gcp.gemini_server import GeminiServer, answer
from tests.jobkit_gcp.metadata_server import ACCOUNT, MetadataServer
from tests.jobkit_http.server import wait_for
from tests.jobkit_http.test_cli import free_port

RISKS = {"risks": ["flooding", "fire"]}


@attrs.frozen
class Served:
    base_url: str
    data: Path
    log: Path

    def client(self, user: str) -> httpx.Client:
        from datetime import UTC, datetime

        from jobkit_http import keys

        token = keys.issue_token(self.data, user, now=datetime.now(UTC))
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@pytest.fixture
def served(tmp_path: Path, gemini: GeminiServer, metadata: MetadataServer) -> Iterator[Served]:
    gemini.token = metadata.token  # Vertex AI accepts only the token the metadata server issued
    port = free_port()
    env = {
        **isolated_environ(tmp_path),
        **metadata.environ(),
        "GOOGLE_CLOUD_PROJECT": "test-project",  # JOBKIT_GCP_PROJECT falls back to it
        "GOOGLE_VERTEX_BASE_URL": gemini.base_url,
        "JOBKIT_ANALYZER": "gemini",
        "JOBKIT_GEMINI_MODELS": "gemini-3.8-flash",
        "JOBKIT_DATA": str(tmp_path / "data"),
        "JOBKIT_PORT": str(port),
        "JOBKIT_LOG_FORMAT": "json",
        "JOBKIT_GRACE_SECONDS": "1",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "jobkit_http.cli", "serve"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield Served(base_url=base, data=tmp_path / "data", log=log)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) in {0, -signal.SIGTERM}, log.read_text()


def upload(client: httpx.Client, form: dict[str, str]) -> httpx.Response:
    return client.post(
        "/api/v1/pdf-processing",
        files={"file": ("report.pdf", support.SAMPLE, "application/pdf")},
        data=form,
    )


def test_a_pdf_uploaded_with_instructions_and_a_schema_comes_back_structured(
    served: Served, gemini: GeminiServer, metadata: MetadataServer
) -> None:
    gemini.script(answer(RISKS, prompt_tokens=1500, output_tokens=30))
    with served.client("alice") as client:
        response = upload(
            client,
            {"instructions": support.INSTRUCTIONS, "schema": json.dumps(support.SCHEMA)},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        status = wait_for(client, job_id)
        assert status["status"] == "completed", status
        result = client.get(f"/api/v1/jobs/{job_id}/result")
        assert result.status_code == 200
        job = client.get(f"/api/v1/jobs/{job_id}").json()

    document = result.json()
    assert document["output"] == RISKS
    assert document["modelVersion"] == "gemini-3.1-pro-preview-001"
    assert document["finishReason"] == "STOP"
    assert job["result"]["usage"] == {"promptTokens": 1500, "outputTokens": 30, "totalTokens": 1530}
    assert job["result"]["cost"]["amount"] == round((1500 * 2 + 30 * 12) / 1e6, 6)

    [call] = gemini.calls
    assert call.path.startswith("/v1")
    assert "/projects/test-project/locations/us-central1/" in call.path
    assert call.headers["authorization"] == f"Bearer {metadata.token}"
    assert call.inline_bytes() == support.SAMPLE
    assert call.prompt() == support.INSTRUCTIONS
    assert call.generation()["responseJsonSchema"] == support.SCHEMA
    assert metadata.count(ACCOUNT + "token") >= 1


def test_a_model_outside_the_allow_list_is_refused_at_submission(
    served: Served, gemini: GeminiServer
) -> None:
    with served.client("bob") as client:
        refused = upload(client, {"model": "gemini-1.5-pro"})
        allowed = upload(client, {"model": "gemini-3.8-flash", "instructions": "Summarise."})
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["errors"]
    assert problem == {
        "field": "params/model",
        "message": "must be one of: gemini-3.1-pro-preview, gemini-3.8-flash",
    }
    assert allowed.status_code == 202, allowed.text


def test_serve_refuses_to_start_without_google_credentials(tmp_path: Path) -> None:
    env = {
        **isolated_environ(tmp_path),
        "NO_GCE_CHECK": "true",  # not on Google Cloud: no metadata server to ask
        "GOOGLE_CLOUD_PROJECT": "test-project",
        "JOBKIT_ANALYZER": "gemini",
        "JOBKIT_DATA": str(tmp_path / "data"),
        "JOBKIT_PORT": str(free_port()),
    }
    started = subprocess.run(
        [sys.executable, "-m", "jobkit_http.cli", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert started.returncode == 1
    *logged, line = started.stderr.strip().splitlines()  # before it, google.auth's own log
    assert line.startswith("jobkit: error: no Google credentials for Vertex AI"), line
    assert all(json.loads(entry)["level"] for entry in logged)  # structured, as every log
