"""The `jobkit` command line as a user runs it: real processes, a real server on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "jobkit_http" / "samples" / "sample.pdf"


def jobkit(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobkit_http.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """`jobkit serve --demo` (what `make run` runs), stopped with SIGTERM afterwards."""
    port = free_port()
    env = {
        "JOBKIT_DATA": str(tmp_path / "data"),
        "JOBKIT_PORT": str(port),
        "JOBKIT_URL": f"http://127.0.0.1:{port}",
        "JOBKIT_LOG_FORMAT": "json",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "jobkit_http.cli", "serve", "--demo", "--user", "demo"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "demo: completed" not in log.read_text():
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield env, log.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells it
        assert server.wait(timeout=20) in {0, -signal.SIGTERM}
        assert '"message": "service stopped"' in log.read_text()


def test_serve_demo_processes_the_sample_then_the_client_commands_work(
    served: tuple[dict[str, str], str],
) -> None:
    env, log = served
    assert "demo: completed: 3 pages analysed" in log
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert all({"severity", "logger", "message", "time"} <= set(entry) for entry in entries)
    assert any(e.get("event") == "completed" and e["severity"] == "INFO" for e in entries)
    # What a person sees is what happened to their document: not the demo's own HTTP
    # client's requests, nor uvicorn's lines with their colour codes.
    assert not [e for e in entries if e["logger"].startswith(("httpx", "httpcore", "uvicorn"))]
    assert "color_message" not in log
    created = next(e for e in entries if e.get("event") == "created")
    assert created["userId"] == "local:demo"
    assert created["requestId"]

    submitted = jobkit(
        "submit", str(SAMPLE), "--wait", "--instructions", "List the chapters", env=env
    )
    assert submitted.returncode == 0, submitted.stderr
    result = json.loads(submitted.stdout)
    assert result["document"]["pages"] == 3
    assert "Lighthouse" in result["output"]["pages"][0]["text"]
    assert "completed" in submitted.stderr  # progress was shown as it went

    listed = jobkit("jobs", env=env)
    assert listed.returncode == 0, listed.stderr
    assert result["jobId"] in listed.stdout

    shown = jobkit("status", result["jobId"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "completed"

    queued = jobkit("submit", str(SAMPLE), "--delay", "3600", env=env)
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.strip()
    pending = json.loads(jobkit("status", job_id, env=env).stdout)
    assert pending["status"] == "pending"


def test_submit_direct_uploads_to_a_signed_url_then_submits(
    served: tuple[dict[str, str], str],
) -> None:
    env, _ = served
    submitted = jobkit(
        "submit", str(SAMPLE), "--direct", "--wait", "--instructions", "Summarise", env=env
    )
    assert submitted.returncode == 0, submitted.stderr
    result = json.loads(submitted.stdout)
    assert result["document"] == {**result["document"], "filename": "sample.pdf", "pages": 3}
    job = json.loads(jobkit("status", result["jobId"], env=env).stdout)
    assert job["status"] == "completed"
    uploads = Path(env["JOBKIT_DATA"]) / "blobs" / "uploads"
    assert [p.parent.name for p in uploads.rglob("document.pdf")] == [result["jobId"]]
    # Without the flag, a file above JOBKIT_DIRECT_UPLOAD_ABOVE goes the same way.
    queued = jobkit("submit", str(SAMPLE), env={**env, "JOBKIT_DIRECT_UPLOAD_ABOVE": "1000"})
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.strip()
    assert sorted(p.parent.name for p in uploads.rglob("document.pdf")) == sorted(
        [result["jobId"], job_id]
    )


def test_serve_prints_a_sign_in_link_for_the_demos_user(
    served: tuple[dict[str, str], str],
) -> None:
    env, log = served
    (link,) = [line.strip() for line in log.splitlines() if "/signin#code=" in line]
    base, code = link.split("/signin#code=")
    assert base == env["JOBKIT_URL"]
    signed_in = httpx.post(f"{base}/signin/local", json={"code": code})
    assert signed_in.status_code == 200, signed_in.text
    session = signed_in.json()
    assert session["user"] == "demo"  # `serve --demo --user demo`
    bearer = {"Authorization": f"Bearer {session['accessToken']}"}
    mine = httpx.get(f"{base}/api/v1/jobs", headers=bearer).json()["jobs"]
    assert [job["status"] for job in mine] == ["completed"]  # the demo's job, as this user's
    again = httpx.post(f"{base}/signin/local", json={"code": code})
    assert again.status_code == 401
    assert "used already" in again.json()["detail"]

    made = jobkit("signin", "--user", "bob", env=env)
    assert made.returncode == 0, made.stderr
    other = made.stdout.strip().split("#code=")[1]
    assert httpx.post(f"{base}/signin/local", json={"code": other}).json()["user"] == "bob"


def test_errors_are_one_clear_line_and_a_non_zero_exit(
    served: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, _ = served
    missing = jobkit("submit", str(tmp_path / "nope.pdf"), env=env)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"jobkit: error: no such file: {tmp_path / 'nope.pdf'}",
    )

    not_pdf = tmp_path / "notes.pdf"
    not_pdf.write_text("plain text")
    refused = jobkit("submit", str(not_pdf), env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("jobkit: error: 415 the file is not a PDF")

    unknown = jobkit("status", "00000000-0000-4000-8000-000000000000", env=env)
    assert unknown.returncode == 1
    assert "404" in unknown.stderr

    nobody = jobkit("jobs", env={**env, "JOBKIT_URL": f"http://127.0.0.1:{free_port()}"})
    assert nobody.returncode == 1
    assert "is `jobkit serve` running?" in nobody.stderr
    assert len(nobody.stderr.strip().splitlines()) == 1


def test_token_prints_a_token_and_settings_errors_are_clear(tmp_path: Path) -> None:
    env = {"JOBKIT_DATA": str(tmp_path)}
    made = jobkit("token", "--user", "alice", env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.count(".") == 2  # a JWT: header.payload.signature

    bad_user = jobkit("token", "--user", "no spaces allowed", env=env)
    assert bad_user.returncode == 1
    assert bad_user.stderr.startswith("jobkit: error:")

    bad_setting = jobkit("token", "--user", "alice", env={**env, "JOBKIT_PORT": "eighty"})
    assert bad_setting.returncode == 1
    assert "JOBKIT_PORT='eighty'" in bad_setting.stderr


def test_help_lists_every_command() -> None:
    shown = jobkit("--help", env={})
    assert shown.returncode == 0
    for command in ("serve", "worker", "token", "signin", "submit", "status", "jobs"):
        assert command in shown.stdout
