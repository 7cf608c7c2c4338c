"""Hypothesis profiles `dev` (quick) and `ci` (deeper), picked by HYPOTHESIS_PROFILE; lines
tests add to the terminal summary; the stub Gemini server every folder's tests use."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _pytest.terminal import TerminalReporter
from hypothesis import settings

from tests.jobkit_gcp.gemini_server import GeminiServer

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Lines a test wants in the terminal summary, where CI's log shows them (`-rA` not needed).
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("summary")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture
def gemini() -> Iterator[GeminiServer]:
    """The stub Gemini server (`tests/jobkit_gcp/gemini_server.py`), running."""
    with GeminiServer() as server:
        yield server
