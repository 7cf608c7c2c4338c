"""Fixtures for the GCP interpreters: the Firestore emulator and fake-gcs-server, once per
session, with the clients' own variables pointing at them; fresh projects and buckets."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import attrs
import pytest

from tests.jobkit_gcp import emulators as emulator_processes

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


def unique(prefix: str) -> str:
    """A fresh name: tests isolate by Firestore project and by bucket."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
