"""Huey on SQLite, measured the way `queue.py` measures jobkit: its own storage and its own
consumer process, one producer making one call at a time. A benchmark-only dependency:
`ensure()` installs it into the running environment when `queue.py --peers` asks.

The Huey app lives in this file, imported as `benchmarks.huey_peer` by the producer and by
the consumer process alike (Huey names a task by its module): `spawn` runs Huey's own
consumer (`huey.consumer.Consumer`, its defaults: one worker thread, polling from 0.1 s
with backoff) on `FOLDER/huey.db`. Tasks append their timings to files in the folder.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)
CONSUME = (
    f"import sys; sys.path.insert(0, {ROOT!r}); from benchmarks import huey_peer;"
    " huey_peer.consume(sys.argv[1])"
)
SYNCHRONOUS = {"NORMAL": 1, "FULL": 2}


def ensure() -> None:
    """Install Huey into this environment if it is not there (benchmark-only)."""
    try:
        importlib.import_module("huey")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "huey"], check=True)


def app(folder: str, synchronous: str = "FULL") -> Any:
    """The Huey app on `folder/huey.db`, its SQLite at `synchronous` (FULL is its default)."""
    from huey import SqliteHuey
    from huey.storage import SqliteStorage

    class Storage(SqliteStorage):  # type: ignore[misc]
        def _create_connection(self) -> Any:
            connection = super()._create_connection()
            connection.execute(f"pragma synchronous={SYNCHRONOUS[synchronous]}")
            return connection

    huey = SqliteHuey(filename=os.path.join(folder, "huey.db"), storage_class=Storage)
    marks = Path(folder)

    @huey.task(name="noop")  # type: ignore[untyped-decorator]
    def noop() -> None:
        return None

    @huey.task(name="stamp")  # type: ignore[untyped-decorator]
    def stamp(name: str, submitted: float) -> None:
        with (marks / name).open("a") as out:
            out.write(f"{submitted} {time.time()}\n")

    huey.noop, huey.stamp = noop, stamp
    return huey


def consume(folder: str) -> None:
    huey = app(folder)
    print("ready", flush=True)
    huey.create_consumer().run()  # its defaults; SIGTERM stops it


def spawn(folder: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CONSUME, folder],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit("the Huey consumer failed to start")
    return process


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.communicate(timeout=60)


def enqueue_one(count: int, synchronous: str) -> float:
    """Jobs/s, one call at a time (each returns once the task is stored)."""
    with tempfile.TemporaryDirectory() as folder:
        huey = app(folder, synchronous)
        for _ in range(100):
            huey.noop()
        started = time.perf_counter()
        for _ in range(count):
            huey.noop()
        return count / (time.perf_counter() - started)


def drain(count: int) -> float:
    """Jobs/s for one consumer process with its defaults (FULL) over `count` queued no-ops,
    from the first task's start to the last's (both stamped by the consumer)."""
    with tempfile.TemporaryDirectory() as folder:
        huey = app(folder)
        huey.stamp("first", time.time())
        for _ in range(count):
            huey.noop()
        huey.stamp("last", time.time())
        consumer = spawn(folder)
        try:
            last = Path(folder) / "last"
            deadline = time.monotonic() + 600
            while not last.exists() or not last.read_text().endswith("\n"):
                if time.monotonic() > deadline:
                    raise SystemExit("Huey did not drain")
                time.sleep(0.05)
            first_at = float((Path(folder) / "first").read_text().split()[1])
            last_at = float(last.read_text().split()[1])
        finally:
            stop(consumer)
    return count / (last_at - first_at)


def latency(rate: float, seconds: float) -> list[float]:
    """Start latencies (ms) of tasks submitted at `rate` from this process to an idle
    consumer in another: submitted to started, both on the wall clock."""
    with tempfile.TemporaryDirectory() as folder:
        huey = app(folder)
        consumer = spawn(folder)
        try:
            time.sleep(0.5)  # let it settle into its idle polling
            count = int(rate * seconds)
            start = time.perf_counter()
            for n in range(count):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                huey.stamp("latency", time.time())
            marks = Path(folder) / "latency"
            deadline = time.monotonic() + 60
            while not marks.exists() or len(marks.read_text().splitlines()) < count:
                if time.monotonic() > deadline:
                    raise SystemExit("Huey did not run every task")
                time.sleep(0.05)
            lines = marks.read_text().splitlines()
        finally:
            stop(consumer)
    return sorted((float(b) - float(a)) * 1000 for a, b in (line.split() for line in lines))
