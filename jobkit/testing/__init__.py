"""Test support: the in-memory store, a virtual clock and the deterministic simulator."""

from jobkit.testing import simulator
from jobkit.testing.clock import VirtualClock
from jobkit.testing.memory import MemoryJobStore

__all__ = ["MemoryJobStore", "VirtualClock", "simulator"]
