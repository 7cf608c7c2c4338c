"""Tasks for the bounded pool's tests: module-level, so a child process can import them."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

Report = Callable[[int, int, str], None]


def echo(report: Report, value: object) -> object:
    return value


def pid(report: Report) -> int:
    return os.getpid()


def counted(report: Report, steps: int) -> int:
    for step in range(1, steps + 1):
        report(step, steps, f"step {step}")
    return steps


def spin(report: Report) -> None:
    while True:
        pass


def hog(report: Report, megabytes: int) -> int:
    held = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(held)


def nap(report: Report, seconds: float) -> tuple[int, float, float]:
    started = time.monotonic()
    time.sleep(seconds)
    return os.getpid(), started, time.monotonic()


def die(report: Report) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def fail(report: Report, message: str) -> None:
    raise ValueError(message)


def chatty(report: Report) -> str:
    print("this goes to stderr, not into the protocol")
    return "still fine"
