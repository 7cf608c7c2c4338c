"""What the queue gauges cost on SQLite: `JobStore.counts` (the live jobs by queue, from the
partial indexes) on a million jobs, against counting every job by status and queue (the
full scan the gauges avoid). Two files: most jobs finished (a service's usual state), and a
backlog of half a million pending jobs (the worst case for `counts`, which reads every
pending index entry).

Run: `python benchmarks/gauges.py` (5 fresh processes per figure, medians). The files are
built once under the system's temporary folder and kept for later runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This folder leaves sys.path: its `queue.py` would hide the standard library's.
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from returns.result import Success

from benchmarks import _harness
from jobkit import events, instants, machine, pipeline, records, registry, submission
from jobkit.local import sqlite_schema as schema
from jobkit.local.sqlite import SqliteJobStore

JOBS = 1_000_000
PROCESSING = 64
QUEUES = ("default", "reports", "bulk")
NOW = datetime(2030, 1, 1, tzinfo=UTC)
FOLDER = Path(tempfile.gettempdir()) / "jobkit-bench-gauges"
CALLS = 20
FULL_SCAN = "SELECT status, queue, COUNT(*) FROM jobs GROUP BY status, queue"


def _nothing(job: object, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


def _template() -> tuple[object, ...]:
    """A real job's row (its document as the store keeps it, a few hundred bytes)."""
    types = registry.of([registry.JobType(name="report", pipeline=_nothing)])
    request = {"type": "report", "params": {"instructions": "Summarise the quarter", "pages": 12}}
    draft = submission.new_job(request, types=types, job_id="x", user_id="u", now=NOW).unwrap()
    job, _ = machine.step(draft, events.Submitted(), NOW).unwrap()
    return records.to_record(job)


def _build(path: Path, pending: int) -> None:
    """`JOBS` jobs: `pending` pending (a fifth of them due), `PROCESSING` running, the rest
    completed, spread over `QUEUES`."""
    asyncio.run(_create(path))
    template = list(_template())
    doc = template[10]
    due, later = (
        instants.format(NOW - timedelta(minutes=5)),
        instants.format(NOW + timedelta(hours=1)),
    )
    lease = instants.format(NOW + timedelta(seconds=30))
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        rows = []
        for n in range(JOBS):
            if n < pending:
                status, run_at, expires = "pending", due if n % 5 == 0 else later, None
            elif n < pending + PROCESSING:
                status, run_at, expires = "processing", due, lease
            else:
                status, run_at, expires = "completed", due, None
            created = instants.format(NOW - timedelta(seconds=JOBS - n))
            rows.append(
                (f"job-{n:07d}", "u", "report", status, 50, QUEUES[n % 3], run_at, created,
                 expires, 3, doc)
            )  # fmt: skip
            if len(rows) == 50_000:
                db.executemany(schema.INSERT, rows)
                rows.clear()
        db.executemany(schema.INSERT, rows)
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.execute("PRAGMA journal_mode = DELETE")  # one file, safe to rename


async def _create(path: Path) -> None:
    async with SqliteJobStore(path):
        pass


def _file(name: str, pending: int) -> Path:
    path = FOLDER / f"{name}.db"
    if not path.exists():
        FOLDER.mkdir(parents=True, exist_ok=True)
        building = path.with_suffix(".building")
        for leftover in (building, *(Path(f"{building}{end}") for end in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        _build(building, pending)
        building.rename(path)
    return path


def _measure(path: Path) -> dict[str, float]:
    async def counts() -> list[float]:
        seconds = []
        async with SqliteJobStore(path) as store:
            await store.counts(NOW, QUEUES)  # warm: pages in the OS cache, as in service
            for _ in range(CALLS):
                started = time.perf_counter()
                await store.counts(NOW, QUEUES)
                seconds.append(time.perf_counter() - started)
        return seconds

    took = asyncio.run(counts())
    with sqlite3.connect(path) as db:
        db.execute(FULL_SCAN).fetchall()  # warm
        started = time.perf_counter()
        db.execute(FULL_SCAN).fetchall()
        scan = time.perf_counter() - started
    return {
        "counts() ms": statistics.median(took) * 1000,
        "full scan by status, queue ms": scan * 1000,
    }


def mostly_finished() -> dict[str, float]:
    """1,000,000 jobs: 20,000 pending (4,000 due), 64 processing, the rest completed."""
    return _measure(_file("mostly-finished", 20_000))


def big_backlog() -> dict[str, float]:
    """1,000,000 jobs: 500,000 pending (100,000 due), 64 processing, the rest completed."""
    return _measure(_file("big-backlog", 500_000))


MEASURES = {
    "gauges on 1,000,000 jobs, mostly finished": mostly_finished,
    "gauges on 1,000,000 jobs, 500,000 pending": big_backlog,
}

if __name__ == "__main__":
    raise SystemExit(_harness.main(MEASURES, sys.argv[1:]))
