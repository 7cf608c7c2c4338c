"""Fixtures for the GCP interpreters: the Firestore emulator and fake-gcs-server once per
session (the clients' own variables pointing at them; fresh projects and buckets), a stub
Gemini and a stub metadata server on loopback, and an environment from which nothing can
reach a real Google endpoint."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.jobkit_gcp import emulators as emulator_processes
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
def metadata() -> Iterator[MetadataServer]:
    with MetadataServer() as server:
        yield server


VARIABLES = ("FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


@attrs.frozen
class Emulators:
    firestore: str  # host:port, as FIRESTORE_EMULATOR_HOST takes it
    storage: str  # http://host:port, as STORAGE_EMULATOR_HOST takes it

    def environ(self) -> dict[str, str]:
        """The variables that point the Google clients (and so jobkit) at the emulators."""
        return {"FIRESTORE_EMULATOR_HOST": self.firestore, "STORAGE_EMULATOR_HOST": self.storage}


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    """Both emulators for the whole session. Missing or broken, every test using them fails."""
    context = emulator_processes.running()
    try:
        firestore, gcs = context.__enter__()
    except emulator_processes.EmulatorError as exc:
        pytest.fail(str(exc), pytrace=False)
    running = Emulators(firestore=firestore.address, storage=f"http://{gcs.address}")
    saved = {name: os.environ.get(name) for name in VARIABLES}
    os.environ.update(running.environ())
    try:
        yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def tasks_emulator() -> Iterator[str]:
    """The Cloud Tasks emulator for the whole session (`host:port`); each test makes its own
    queue. Missing or broken, every test using it fails."""
    with tempfile.TemporaryDirectory(prefix="jobkit-tasks-") as folder:
        try:
            emulator = emulator_processes.start_tasks(Path(folder), [])
        except emulator_processes.EmulatorError as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            try:
                emulator_processes.wait_ready(emulator)
            except emulator_processes.EmulatorError as exc:
                pytest.fail(str(exc), pytrace=False)
            yield emulator.address
        finally:
            emulator.stop()


def unique(prefix: str) -> str:
    """A fresh name: tests isolate by Firestore project and by bucket."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
