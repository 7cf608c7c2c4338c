"""What the image would run, without a container engine (none runs on these machines): the
environment the Dockerfile builds, built the same way in a fresh virtual environment, runs
the image's exact command with Cloud Run's `PORT` against the emulators: it serves, a PDF
goes through push dispatch, every line on stdout is JSON, and SIGTERM ends it within 10 s."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from google.cloud import storage

from jobkit_http import keys
from tests.deploy.container import build_environment, image_command, image_environment
from tests.jobkit_gcp import push
from tests.jobkit_gcp.conftest import Emulators, unique
from tests.jobkit_gcp.emulators import free_port
from tests.jobkit_gcp.gemini_server import GeminiServer, answer
from tests.jobkit_http.server import SAMPLE_PDF, wait_for


def _ready(base: str, server: subprocess.Popen[bytes]) -> bool:
    assert server.poll() is None, "the server exited"
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_the_images_command_serves_on_port_through_push_dispatch(
    emulators: Emulators, tasks_emulator: str, gemini: GeminiServer, tmp_path: Path
) -> None:
    venv = build_environment(tmp_path / "image")
    assert not (venv / "bin" / "pip").exists()  # no build tools left
    gemini.default = answer(push.SUMMARY)
    project, bucket = unique("image"), unique("image")
    storage.Client().create_bucket(bucket)
    queue = push.make_queue(tasks_emulator, project)
    port = free_port()
    data = tmp_path / "data"
    with push.issuer() as google:
        environ = {
            "HOME": str(tmp_path),
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
            **push.push_environ(
                emulators,
                tasks_emulator,
                project=project,
                bucket=bucket,
                queue=queue,
                url=f"http://127.0.0.1:{port}",
                gemini=gemini,
                issuer=google,
            ),
            **image_environment(),
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",  # the image's PATH: its venv first
            "JOBKIT_DATA": str(data),
            "PORT": str(port),
            # The one difference from Cloud Run: servers on this machine listen on loopback
            # only (the settings' tests show that PORT alone means 0.0.0.0).
            "JOBKIT_HOST": "127.0.0.1",
        }
        out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            server = subprocess.Popen(
                image_command(), env=environ, stdout=stdout, stderr=stderr, cwd=tmp_path
            )
        try:
            base = f"http://127.0.0.1:{port}"
            push.wait_until(lambda: _ready(base, server), 60, "the image's server")
            token = keys.issue_token(data, "alice", now=push.now())
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as alice:
                response = alice.post(
                    "/api/v1/pdf-processing",
                    files={"file": ("a.pdf", SAMPLE_PDF, "application/pdf")},
                )
                assert response.status_code == 202, response.text
                assert wait_for(alice, response.json()["id"], timeout=60)["status"] == "completed"
        finally:
            signalled = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=15)
            stopped = time.monotonic() - signalled

    assert code in {0, -signal.SIGTERM}, err.read_text()
    assert stopped < 10
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    assert lines, err.read_text()
    records = [json.loads(line) for line in lines]  # every line on stdout is JSON
    assert any(r.get("path") == "/internal/dispatch" and r.get("status") == 200 for r in records)
    assert {r["severity"] for r in records} <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
