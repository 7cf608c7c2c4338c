"""The in-memory store against the conformance suite: the reference must meet its own bar."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from jobkit import ports
from jobkit.testing import MemoryJobStore
from tests.jobkit import conformance, turns_conformance


@pytest.fixture
def opener() -> conformance.Opener:
    stores: dict[str, MemoryJobStore] = {}

    @asynccontextmanager
    async def open_store(name: str) -> AsyncIterator[ports.JobStore]:
        yield stores.setdefault(name, MemoryJobStore())

    return open_store


class TestMemoryJobStore(conformance.JobStoreConformance, turns_conformance.TurnsConformance):
    pass
