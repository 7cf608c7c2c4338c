"""The embedded runner's speed on this machine: enqueue and drain rates, latency at a steady
rate, claim latency against table size, and a worker's peak memory; and, side by side with
Huey on SQLite, cross-process start latency, an idle worker's CPU, one-at-a-time enqueue and
the drain at defaults.

Run: `python benchmarks/queue.py [--runs N]` (each figure: the median of N fresh processes),
`python benchmarks/queue.py --only NAME,NAME [--runs N]`, or
`python benchmarks/queue.py --peers [--runs N]`: the side-by-side set, which installs Huey
into this environment if it is missing (a benchmark-only dependency). Runs are interleaved,
round by round, so that a shared machine's noise falls on both libraries.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib's `queue`: its folder leaves the import path, and the
# project's root joins it, so `queue` is the stdlib's and `benchmarks._harness` is found.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import asyncio
import json
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta

from returns.result import Success

from benchmarks import _harness, huey_peer
from jobkit import events, instants, jobs, machine, pipeline, plugins, registry, submission
from jobkit.local import Runtime
from jobkit.local.sqlite_schema import encode
from jobkit.worker.process import run_until_signalled, tune_process
from jobkit.worker.worker import WorkerConfig, utc_now

JOBS = 10_000
SCRIPT = str(Path(__file__).resolve())


def _noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


TYPES = registry.register(plugins.discover(), registry.JobType(name="noop", pipeline=_noop))
# No-op jobs cost nothing to hold: many slots let one claim (and one commit) take many.
DRAIN = WorkerConfig(concurrency=256, idle_seconds=0.05)
SERVE = WorkerConfig(concurrency=8, idle_seconds=0.05)
DEFAULTS = WorkerConfig()  # what a worker gets unless told otherwise
CONFIGS = {"drain": DRAIN, "serve": SERVE, "defaults": DEFAULTS}
ONE_AT_A_TIME = 5_000  # submissions, each awaited before the next
RATE, SECONDS = 50.0, 10.0  # the steady load of the latency figures
IDLE_SECONDS = 30.0  # how long an idle worker's CPU is measured


# -- worker processes ------------------------------------------------------------


async def _worker(folder: str, mode: str, config: str, synchronous: str) -> None:
    async with Runtime(folder, types=TYPES, synchronous=synchronous) as runtime:  # type: ignore[arg-type]
        print("ready", flush=True)
        if mode == "drain":
            tune_process()  # as `run_until_signalled` does for a worker process
            await asyncio.to_thread(sys.stdin.readline)  # wait for "go"
            done = await runtime.worker(CONFIGS[config]).drain()
            print(json.dumps({"done": done}), flush=True)
        else:
            await run_until_signalled(runtime.worker(CONFIGS[config]))


def _spawn(
    folder: str, mode: str, config: str | None = None, synchronous: str = "NORMAL"
) -> subprocess.Popen[str]:
    config = config or mode
    process = subprocess.Popen(
        [sys.executable, SCRIPT, "--worker", folder, mode, config, synchronous],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit("a worker process failed to start")
    return process


# -- measures --------------------------------------------------------------------


async def _enqueue(folder: str, count: int, chunk: int = 500) -> float:
    async with Runtime(folder, types=TYPES) as runtime:
        started = time.perf_counter()
        for offset in range(0, count, chunk):
            batch = [runtime.submit({"type": "noop"}) for _ in range(min(chunk, count - offset))]
            for outcome in await asyncio.gather(*batch):
                outcome.unwrap()
        return time.perf_counter() - started


def enqueue() -> dict[str, float]:
    """One producer, the library API (`Runtime.submit`), 500 submissions in flight."""
    with tempfile.TemporaryDirectory() as folder:
        elapsed = asyncio.run(_enqueue(folder, JOBS))
    return {"enqueued jobs/s": JOBS / elapsed}


async def _enqueue_many(folder: str, count: int, chunk: int = 500) -> float:
    async with Runtime(folder, types=TYPES) as runtime:
        started = time.perf_counter()
        for offset in range(0, count, chunk):
            size = min(chunk, count - offset)
            for outcome in await runtime.submit_many([{"type": "noop"}] * size):
                outcome.unwrap()
        return time.perf_counter() - started


def enqueue_many() -> dict[str, float]:
    """One producer, the library API's bulk form (`Runtime.submit_many`), 500 per call."""
    with tempfile.TemporaryDirectory() as folder:
        elapsed = asyncio.run(_enqueue_many(folder, JOBS))
    return {"enqueued jobs/s, submit_many": JOBS / elapsed}


def _drain(processes: int, config: str = "drain", synchronous: str = "NORMAL") -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_enqueue(folder, JOBS))
        workers = [_spawn(folder, "drain", config, synchronous) for _ in range(processes)]
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        done = 0
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            done += json.loads(out.strip().splitlines()[-1])["done"]
        elapsed = time.perf_counter() - started
        if done != JOBS:
            raise SystemExit(f"drained {done} of {JOBS}")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"drained jobs/s": JOBS / elapsed, "worker peak RSS MiB": peak_kib / 1024}


def drain_1() -> dict[str, float]:
    """10,000 no-op jobs, one worker process (concurrency 256), go to last completion."""
    return _drain(1)


def drain_2() -> dict[str, float]:
    return _drain(2)


def drain_defaults_full() -> dict[str, float]:
    """10,000 no-op jobs, one worker process with the default configuration, at FULL."""
    return {"drained jobs/s, defaults, FULL": _drain(1, "defaults", "FULL")["drained jobs/s"]}


def huey_drain_full() -> dict[str, float]:
    """The same with Huey's consumer at its defaults (one worker thread; SQLite at FULL)."""
    return {"Huey drained jobs/s, defaults, FULL": huey_peer.drain(JOBS)}


async def _enqueue_one(folder: str, count: int, synchronous: str) -> float:
    async with Runtime(folder, types=TYPES, synchronous=synchronous) as runtime:  # type: ignore[arg-type]
        for _ in range(100):  # warm: the file exists, statements are prepared
            (await runtime.submit({"type": "noop"})).unwrap()
        started = time.perf_counter()
        for _ in range(count):
            (await runtime.submit({"type": "noop"})).unwrap()
        return count / (time.perf_counter() - started)


def _one(synchronous: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_enqueue_one(folder, ONE_AT_A_TIME, synchronous))


def enqueue_one_normal() -> dict[str, float]:
    """One producer, one `Runtime.submit` awaited at a time, at NORMAL (the default)."""
    return {"one-at-a-time jobs/s, NORMAL": _one("NORMAL")}


def enqueue_one_full() -> dict[str, float]:
    return {"one-at-a-time jobs/s, FULL": _one("FULL")}


def huey_enqueue_one_normal() -> dict[str, float]:
    """Huey's producer, one task call at a time (each returns once stored), SQLite NORMAL."""
    return {"Huey one-at-a-time jobs/s, NORMAL": huey_peer.enqueue_one(ONE_AT_A_TIME, "NORMAL")}


def huey_enqueue_one_full() -> dict[str, float]:
    return {"Huey one-at-a-time jobs/s, FULL": huey_peer.enqueue_one(ONE_AT_A_TIME, "FULL")}


async def _steady(folder: str, rate: float, seconds: float) -> list[str]:
    async with Runtime(folder, types=TYPES) as runtime:
        ids = []
        start = time.perf_counter()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ids.append((await runtime.submit({"type": "noop"})).unwrap()["id"])
        return ids


def _percentiles(name: str, waits: list[float]) -> dict[str, float]:
    waits = sorted(waits)
    return {f"{name} p50 ms": statistics.median(waits), f"{name} p99 ms": waits[-len(waits) // 100]}


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far, every thread's (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _idle_cpu(process: subprocess.Popen[str]) -> float:
    """Percent of one core `process` uses over IDLE_SECONDS with nothing to do."""
    time.sleep(1.0)  # settle after start-up
    before = _cpu_seconds(process.pid)
    time.sleep(IDLE_SECONDS)
    return (_cpu_seconds(process.pid) - before) / IDLE_SECONDS * 100


def start_latency() -> dict[str, float]:
    """50 jobs/s for 10 s, one awaited submission at a time, to an idle worker process with
    the default configuration: createdAt to the attempt's start. Then the same worker,
    idle: its CPU over IDLE_SECONDS."""
    with tempfile.TemporaryDirectory() as folder:
        worker = _spawn(folder, "serve", "defaults")
        try:
            cpu = _idle_cpu(worker)
            asyncio.run(_steady(folder, RATE, SECONDS))
            with sqlite3.connect(Path(folder) / "jobs.db") as db:
                deadline = time.monotonic() + 60
                while db.execute(
                    "SELECT count(*) FROM jobs WHERE status != 'completed'"
                ).fetchone()[0]:
                    if time.monotonic() > deadline:
                        raise SystemExit("jobs did not complete")
                    time.sleep(0.05)
                docs = [json.loads(d) for (d,) in db.execute("SELECT doc FROM jobs")]
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=30)
    waits = [
        instants.seconds_between(
            instants.parse(doc["createdAt"]), instants.parse(doc["history"][-1]["startedAt"])
        )
        * 1000
        for doc in docs
    ]
    return {**_percentiles("start latency", waits), "idle worker CPU %": cpu}


def huey_start_latency() -> dict[str, float]:
    """The same with Huey's consumer at its defaults; its idle CPU as well."""
    with tempfile.TemporaryDirectory() as folder:
        consumer = huey_peer.spawn(folder)
        try:
            cpu = _idle_cpu(consumer)
        finally:
            huey_peer.stop(consumer)
    waits = huey_peer.latency(RATE, SECONDS)
    return {**_percentiles("Huey start latency", waits), "Huey idle consumer CPU %": cpu}


def _serve_api(folder: str, port: int) -> None:
    """The API (its own worker off) on `folder`, with the no-op type, until terminated."""
    import uvicorn

    from jobkit_http import settings
    from jobkit_http.app import create_app

    chosen = settings.from_env({}, data=Path(folder), worker=False, log_level="WARNING")
    uvicorn.run(create_app(chosen, types=TYPES), host="127.0.0.1", port=port, log_level="warning")


def post_one() -> dict[str, float]:
    """`POST /api/v1/jobs` one request at a time on one keep-alive connection (a raw socket
    client, so that the figure is the server's), the API at its defaults."""
    import socket

    from jobkit_http import keys

    with tempfile.TemporaryDirectory() as folder:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, SCRIPT, "--api", folder, str(port)])
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    connection = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the API did not start") from None
                    time.sleep(0.05)
            token = keys.issue_token(Path(folder), "bench", now=utc_now())
            body = b'{"type": "noop"}'
            request = (
                "POST /api/v1/jobs HTTP/1.1\r\nHost: bench\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            replies = connection.makefile("rb")

            def post() -> None:
                connection.sendall(request)
                length = 0
                while (line := replies.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    elif line.startswith(b"HTTP/1.1 ") and not line.startswith(b"HTTP/1.1 202"):
                        raise SystemExit(f"the API answered {line!r}")
                replies.read(length)

            for _ in range(300):
                post()
            started = time.perf_counter()
            for _ in range(ONE_AT_A_TIME):
                post()
            elapsed = time.perf_counter() - started
            connection.close()
        finally:
            server.terminate()
            server.communicate(timeout=30)
    return {"POST /api/v1/jobs one at a time, requests/s": ONE_AT_A_TIME / elapsed}


def latency() -> dict[str, float]:
    """A steady 50 jobs/s for 10 s from another process; latency = createdAt to completion."""
    with tempfile.TemporaryDirectory() as folder:
        worker = _spawn(folder, "serve")
        try:
            ids = asyncio.run(_steady(folder, 50.0, 10.0))
            deadline = time.monotonic() + 30
            with sqlite3.connect(Path(folder) / "jobs.db") as db:
                while db.execute(
                    "SELECT count(*) FROM jobs WHERE status != 'completed'"
                ).fetchone()[0]:
                    if time.monotonic() > deadline:
                        raise SystemExit("jobs did not complete")
                    time.sleep(0.05)
                docs = [json.loads(d) for (d,) in db.execute("SELECT doc FROM jobs")]
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=30)
    assert len(docs) == len(ids)
    waits = sorted(
        instants.seconds_between(
            instants.parse(doc["createdAt"]), instants.parse(doc["history"][-1]["endedAt"])
        )
        * 1000
        for doc in docs
    )
    return {
        "latency p50 ms": statistics.median(waits),
        "latency p99 ms": waits[int(len(waits) * 0.99) - 1],
    }


def _seed(path: Path, count: int) -> None:
    """`count` pending jobs written straight into the table (rows from one template job)."""
    now = utc_now() - timedelta(minutes=1)
    draft = submission.new_job({"type": "noop"}, types=TYPES, job_id="x", user_id="u", now=now)
    job, _ = machine.step(draft.unwrap(), events.Submitted(), now).unwrap()
    row = encode(job)
    doc = row[-1]
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        for offset in range(0, count, 50_000):
            rows = [
                (f"seed-{n:08d}", *row[1:-1], doc.replace('"id":"x"', f'"id":"seed-{n:08d}"'))
                for n in range(offset, min(offset + 50_000, count))
            ]
            db.executemany(f"INSERT INTO jobs VALUES ({','.join('?' * len(row))})", rows)
            db.commit()


async def _claims(folder: str, count: int, rounds: int) -> list[float]:
    async with Runtime(folder, types=TYPES) as runtime:
        pass  # creates and migrates the file
    _seed(Path(folder) / "jobs.db", count)
    timings = []
    async with Runtime(folder, types=TYPES) as runtime:
        store = runtime.store
        claim = events.Claimed(worker="bench", lease_seconds=30)
        for _ in range(rounds):
            started = time.perf_counter()
            now = utc_now()
            found = await store.claimable(now, None, 1)
            claimed, _ = machine.step(found[0], claim, now).unwrap()
            assert await store.compare_and_set_many([(jobs.version(found[0]), claimed)]) == [True]
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def _claim_latency(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        timings = sorted(asyncio.run(_claims(folder, count, 500)))
    return {
        f"claim p50 ms, {count:,} jobs": statistics.median(timings),
        f"claim p99 ms, {count:,} jobs": timings[int(len(timings) * 0.99) - 1],
    }


def claim_1k() -> dict[str, float]:
    """One claim transaction (read the next due job, compare-and-set it) vs table size."""
    return _claim_latency(1_000)


def claim_100k() -> dict[str, float]:
    return _claim_latency(100_000)


def claim_1m() -> dict[str, float]:
    return _claim_latency(1_000_000)


PEERS = {
    "start_latency": start_latency,
    "huey_start_latency": huey_start_latency,
    "enqueue_one_normal": enqueue_one_normal,
    "huey_enqueue_one_normal": huey_enqueue_one_normal,
    "enqueue_one_full": enqueue_one_full,
    "huey_enqueue_one_full": huey_enqueue_one_full,
    "drain_defaults_full": drain_defaults_full,
    "huey_drain_full": huey_drain_full,
}
MEASURES = {
    "enqueue": enqueue,
    "enqueue_many": enqueue_many,
    "drain_1": drain_1,
    "drain_2": drain_2,
    "latency": latency,
    "claim_1k": claim_1k,
    "claim_100k": claim_100k,
    "claim_1m": claim_1m,
    "post_one": post_one,
    **{name: measure for name, measure in PEERS.items() if not name.startswith("huey")},
}
EVERY = {**MEASURES, **PEERS}

if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        asyncio.run(_worker(*sys.argv[2:]))
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--api":
        _serve_api(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    if len(sys.argv) >= 2 and sys.argv[1] == "--once":
        sys.exit(_harness.main(EVERY, sys.argv[1:]))
    if len(sys.argv) >= 2 and sys.argv[1] == "--peers":
        huey_peer.ensure()
        sys.exit(_harness.main(PEERS, sys.argv[2:], runs=3))
    if len(sys.argv) >= 3 and sys.argv[1] == "--only":
        names = sys.argv[2].split(",")
        if any(name.startswith("huey") for name in names):
            huey_peer.ensure()
        sys.exit(_harness.main({n: EVERY[n] for n in names}, sys.argv[3:], runs=3))
    sys.exit(_harness.main(MEASURES, sys.argv[1:], runs=3))
