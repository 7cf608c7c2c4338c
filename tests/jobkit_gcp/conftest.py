"""Fixtures for the Gemini tests: a stub Gemini and a stub metadata server on loopback, and
an environment from which nothing can reach a real Google endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobkit_gcp.gemini_server import GeminiServer
from tests.jobkit_gcp.metadata_server import MetadataServer

# Variables through which the SDK or the auth library would find real credentials or
# endpoints; every test starts without them.
REACHING_OUT = ("GEMINI_API_KEY", "GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT")


def isolated_environ(tmp: Path) -> dict[str, str]:
    """The process environment less every GOOGLE_* variable and the others above, with the
    gcloud configuration pointed at an empty folder (no user credentials there)."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GOOGLE_", "JOBKIT_")) and name not in REACHING_OUT
    }
    (tmp / "gcloud").mkdir(exist_ok=True)
    return {**kept, "CLOUDSDK_CONFIG": str(tmp / "gcloud")}


@pytest.fixture(autouse=True)
def no_google(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("GOOGLE_") or name in REACHING_OUT:
            monkeypatch.delenv(name)
    (tmp_path / "gcloud").mkdir()
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


@pytest.fixture
def gemini() -> Iterator[GeminiServer]:
    server = GeminiServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def metadata() -> Iterator[MetadataServer]:
    server = MetadataServer().start()
    try:
        yield server
    finally:
        server.stop()
