"""What live updates cost: the change feed's shared poll and rings, and open event streams.

- `poll`: one look of the embedded feed's poll (the part that finds other processes'
  writes) over a SQLite file of 20,000 live jobs of 200 users, with 1,000 watched jobs or
  100 watched users (each with 100 live jobs), reading versions through the port (whole
  jobs decoded) or from the version column (`SqliteVersions`, what the runtime uses). At
  the default period (1 s), a look of N ms costs N/10 % of a core.
- `ring`: what a write pays to ring the feed, with nobody watching and with many watches.
- `streams`: `jobkit serve` in its own process with many event streams open (one per user,
  each on its own pending job): the server's memory and CPU per open stream while quiet,
  and how long a change takes to reach a stream (a job cancelled through the API, until
  its stream's `cancelled` event arrives).

Run: `python benchmarks/streams.py` (each figure is the median of several processes).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import httpx  # noqa: E402

from benchmarks._harness import main  # noqa: E402
from jobkit import jobs  # noqa: E402
from jobkit.local.feed import StoreChangeFeed, StoreVersions  # noqa: E402
from jobkit.local.sqlite import SqliteJobStore  # noqa: E402
from jobkit.local.sqlite_versions import SqliteVersions  # noqa: E402
from jobkit_http.samples.make_sample import build  # noqa: E402
from tests.jobkit.conformance import T0, claimed, new  # noqa: E402

SAMPLE = build()

POPULATION = 20_000
USERS = 200
WATCHED_JOBS = 1_000
WATCHED_USERS = 100
STREAMS = 200
QUIET_SECONDS = 10.0


def population() -> list[jobs.Job]:
    """Jobs of `USERS` users, a fifth of them running (the live pages the user poll reads)."""
    made = []
    for n in range(POPULATION):
        job = new(n, user=f"user-{n % USERS}")
        made.append(claimed(job, T0) if n % 5 == 0 else job)
    return made


def poll() -> dict[str, float]:
    async def run() -> dict[str, float]:
        figures = {}
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "jobs.db"
            async with SqliteJobStore(path) as store:
                made = population()
                for start in range(0, len(made), 2000):
                    await store.insert_many(made[start : start + 2000])
                ids = [jobs.id(job) for job in made[:WATCHED_JOBS]]
                columns = SqliteVersions(path)
                for reader, versions in (("the port", StoreVersions(store)), ("columns", columns)):
                    for label, watched, users in (
                        (f"{WATCHED_JOBS} jobs", ids, 0),
                        (f"{WATCHED_USERS} users", [], WATCHED_USERS),
                    ):
                        # a period of an hour: the looks are taken here, by hand
                        feed = StoreChangeFeed(store, poll_seconds=3600, versions=versions)
                        async with contextlib_stack(feed, watched, users):
                            looks = []
                            for _ in range(20):
                                started = time.perf_counter()
                                await feed.look()
                                looks.append(time.perf_counter() - started)
                        figures[f"look ms, {label}, {reader}"] = statistics.median(looks) * 1000
                columns.close()
        return figures

    return asyncio.run(run())


def contextlib_stack(feed: StoreChangeFeed, ids: list[str], users: int) -> Any:
    import contextlib

    stack = contextlib.AsyncExitStack()

    async def enter() -> contextlib.AsyncExitStack:
        for job_id in ids:
            await stack.enter_async_context(feed.watch_job(job_id))
        for n in range(users):
            await stack.enter_async_context(feed.watch_user(f"user-{n}"))
        return stack

    class Entered:
        async def __aenter__(self) -> None:
            await enter()

        async def __aexit__(self, *exc: object) -> None:
            await stack.aclose()

    return Entered()


def ring() -> dict[str, float]:
    async def run() -> dict[str, float]:
        from jobkit.testing import MemoryJobStore

        feed = StoreChangeFeed(MemoryJobStore(), poll_seconds=None)
        written = [new(n, user=f"user-{n % USERS}") for n in range(10_000)]
        figures = {}
        for label, watched in (("nobody watching", 0), ("1000 jobs watched", WATCHED_JOBS)):
            async with contextlib_stack(feed, [f"other-{n}" for n in range(watched)], 0):
                started = time.perf_counter()
                for job in written:
                    feed.ring_jobs((job,))
                figures[f"ns per ring, {label}"] = (
                    (time.perf_counter() - started) / len(written) * 1e9
                )
        return figures

    return asyncio.run(run())


def streams() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "jobkit_http.cli", "serve", "--port", str(port)],
            env={**os.environ, "JOBKIT_DATA": folder, "JOBKIT_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base)
            return asyncio.run(_streams(base, Path(folder), server.pid))
        finally:
            server.terminate()
            server.wait(30)


async def _streams(base: str, data: Path, pid: int) -> dict[str, float]:
    from datetime import UTC, datetime

    from jobkit_http import keys

    now = datetime.now(UTC)
    tokens = [keys.issue_token(data, f"u{n}", now=now) for n in range(STREAMS)]
    limits = httpx.Limits(max_connections=STREAMS + 10, max_keepalive_connections=STREAMS + 10)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        job_ids = []
        for token in tokens:
            answer = await http.post(
                "/api/v1/pdf-processing",
                files={"file": ("sample.pdf", SAMPLE, "application/pdf")},
                data={"delaySeconds": "3600"},
                headers={"Authorization": f"Bearer {token}"},
            )
            job_ids.append(answer.json()["id"])
        before_memory = _rss(pid)
        arrived: dict[str, float] = {}
        opened = asyncio.Event()
        open_count = 0

        async def follow(token: str, job_id: str) -> None:
            nonlocal open_count
            headers = {"Authorization": f"Bearer {token}"}
            async with http.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=headers) as r:
                open_count += 1
                if open_count == STREAMS:
                    opened.set()
                async for line in r.aiter_lines():
                    if line.startswith("data:") and '"cancelled"' in line:
                        arrived.setdefault(job_id, time.perf_counter())

        tasks = [asyncio.create_task(follow(t, j)) for t, j in zip(tokens, job_ids, strict=True)]
        await asyncio.wait_for(opened.wait(), 60)
        await asyncio.sleep(1)
        cpu_before = _cpu(pid)
        await asyncio.sleep(QUIET_SECONDS)
        cpu_quiet = (_cpu(pid) - cpu_before) / QUIET_SECONDS
        memory = _rss(pid) - before_memory
        sent: dict[str, float] = {}
        for token, job_id in list(zip(tokens, job_ids, strict=True))[:50]:
            sent[job_id] = time.perf_counter()
            await http.delete(
                f"/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}
            )
            await asyncio.sleep(0.02)
        await asyncio.sleep(1)
        latencies = [arrived[j] - sent[j] for j in sent if j in arrived]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        f"server KiB per open stream ({STREAMS} open)": memory / 1024 / STREAMS,
        "server CPU while quiet, % of a core": cpu_quiet * 100,
        "change to event, ms (median)": statistics.median(latencies) * 1000,
        "events that arrived, of 50": float(len(latencies)),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main({"poll": poll, "ring": ring, "streams": streams}, sys.argv[1:], runs=3))
