"""Fixtures for the HTTP tests: real servers on 127.0.0.1, and a fresh user (so no test sees
another's jobs) with a client authenticated as that user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.jobkit_http.server import RunningServer, serve


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The service as deployed by default (SQLite, in-process worker, local tokens), shared."""
    with serve(tmp_path_factory.mktemp("jobkit-data")) as running:
        yield running


@pytest.fixture
def user() -> str:
    return new_user()


@pytest.fixture
def other_user() -> str:
    return new_user()


@pytest.fixture
def client(server: RunningServer, user: str) -> Iterator[httpx.Client]:
    with server.client(user) as authenticated:
        yield authenticated


@pytest.fixture
def other_client(server: RunningServer, other_user: str) -> Iterator[httpx.Client]:
    with server.client(other_user) as authenticated:
        yield authenticated


@pytest.fixture
def anonymous(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as unauthenticated:
        yield unauthenticated
