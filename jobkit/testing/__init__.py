"""Test support: the in-memory store, a virtual clock, the deterministic simulator, and a
harness and hypothesis strategies for testing a job type's pipeline."""

import importlib

from jobkit.testing import harness, lifecycle, simulator
from jobkit.testing.clock import VirtualClock
from jobkit.testing.memory import MemoryJobStore

__all__ = ["MemoryJobStore", "VirtualClock", "harness", "lifecycle", "simulator", "strategies"]


def __getattr__(name: str) -> object:  # `strategies` needs hypothesis: loaded on first use
    if name == "strategies":
        return importlib.import_module("jobkit.testing.strategies")
    raise AttributeError(f"module 'jobkit.testing' has no attribute {name!r}")
