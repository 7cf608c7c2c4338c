"""The Firestore store on the emulator: the conformance suite, then what is Firestore's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from google.cloud import firestore

from jobkit import ports
from jobkit_gcp.firestore import FirestoreJobStore
from tests.jobkit import conformance
from tests.jobkit_gcp.conftest import Emulators, unique


@pytest.fixture
def opener(emulators: Emulators) -> conformance.Opener:
    project = unique("conformance")

    @asynccontextmanager
    async def open_store(name: str) -> AsyncIterator[ports.JobStore]:
        async with FirestoreJobStore(firestore.AsyncClient(project=f"{project}-{name}")) as store:
            yield store

    return open_store


class TestFirestoreJobStore(conformance.JobStoreConformance):
    pass
