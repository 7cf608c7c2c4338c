"""Choosing the GCP backend: a wrong setting stops `jobkit` in one line naming the variable,
never a client library's stack trace; `/readyz` answers 503 while Firestore or the bucket
cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.cloud import storage

from tests.jobkit_gcp.conftest import Emulators, unique
from tests.jobkit_gcp.emulators import free_port
from tests.jobkit_http.server import serve

ROOT = Path(__file__).resolve().parents[2]
# google-auth looks for the metadata server when it finds no credentials: keep it on loopback.
NO_METADATA = {"GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}


def jobkit(command: str, environ: dict[str, str], data: Path) -> subprocess.CompletedProcess[str]:
    """`jobkit COMMAND` in a process of its own, with only `environ` and the basics set."""
    basics = {name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ}
    return subprocess.run(
        [sys.executable, "-m", "jobkit_http.cli", command, "--data", str(data)],
        env={**basics, "HOME": str(data), **NO_METADATA, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str], variable: str) -> str:
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("jobkit: error: "), lines
    assert variable in lines[0]
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_gcp_backend_needs_a_bucket(command: str, tmp_path: Path) -> None:
    done = jobkit(command, {"JOBKIT_BACKEND": "gcp"}, tmp_path)
    one_line(done, "JOBKIT_GCS_BUCKET")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JOBKIT_BACKEND", "postgres"),
        ("JOBKIT_GCS_BUCKET", "Not_A_Bucket!"),
        ("JOBKIT_GCS_PREFIX", "a//b"),
        ("JOBKIT_FIRESTORE_DATABASE", "Bad Name"),
        ("JOBKIT_FIRESTORE_COLLECTION", "jobs/nested"),
    ],
)
def test_a_malformed_setting_is_named(variable: str, value: str, tmp_path: Path) -> None:
    environ = {"JOBKIT_BACKEND": "gcp", "JOBKIT_GCS_BUCKET": "a-bucket", variable: value}
    one_line(jobkit("worker", environ, tmp_path), variable)


def test_no_credentials_is_one_line(tmp_path: Path) -> None:
    """No emulator, no credentials file, no gcloud login, no metadata server."""
    environ = {"JOBKIT_BACKEND": "gcp", "JOBKIT_GCS_BUCKET": "a-bucket"}
    line = one_line(jobkit("worker", environ, tmp_path), "GOOGLE_APPLICATION_CREDENTIALS")
    assert "no Google Cloud credentials" in line


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_bucket_that_does_not_exist_is_one_line(
    command: str, emulators: Emulators, tmp_path: Path
) -> None:
    environ = {
        **emulators.environ(),
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": unique("startup"),
        "JOBKIT_GCS_BUCKET": unique("absent"),
        "JOBKIT_PORT": str(free_port()),
    }
    line = one_line(jobkit(command, environ, tmp_path), "JOBKIT_GCS_BUCKET")
    assert "does not exist" in line


def test_readyz_answers_503_while_the_bucket_cannot_be_reached(
    emulators: Emulators, tmp_path: Path
) -> None:
    bucket = unique("ready")
    storage.Client().create_bucket(bucket)
    environ = {
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": unique("ready"),
        "JOBKIT_GCS_BUCKET": bucket,
    }
    with serve(tmp_path, environ) as server, server.client() as http:
        assert http.get("/readyz").status_code == 200
        storage.Client().bucket(bucket).delete()
        answer = http.get("/readyz")
        assert answer.status_code == 503
        assert "not answering" in answer.json()["detail"]
        storage.Client().create_bucket(bucket)
        assert http.get("/readyz").status_code == 200


def test_readyz_answers_503_while_firestore_cannot_be_reached(
    emulators: Emulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Firestore silent at start-up is a warning, not a refusal: the instance starts, and
    says it is not ready."""
    bucket = unique("ready")
    storage.Client().create_bucket(bucket)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nobody there
    environ = {
        "JOBKIT_BACKEND": "gcp",
        "JOBKIT_GCP_PROJECT": unique("ready"),
        "JOBKIT_GCS_BUCKET": bucket,
        "JOBKIT_WORKER": "false",
    }
    with serve(tmp_path, environ) as server, server.client() as http:
        assert http.get("/readyz").status_code == 503
