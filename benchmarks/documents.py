"""Analysing many small PDFs with the offline analyzer: in the bounded pool of child processes
(as the service does) against in threads of the worker's own process (unbounded).

The offline analyzer once shared the remote analyzer's 60-calls-a-minute limit, so 500 small
PDFs took over 8 minutes whatever the machine; now the pool's size is its only bound. Each
figure is the wall time to submit `DOCUMENTS` copies of the bundled sample and drain them
with one worker (`JOBKIT_CONCURRENCY`-like slots), and the worker process's CPU time.

Run: `python benchmarks/documents.py [--runs N]` (each figure: the median of N processes).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The folder holds `queue.py`, named like the stdlib's: it leaves the import path, and the
# project's root joins it.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import asyncio
import tempfile
import time

from benchmarks import _harness
from jobkit import jobs
from jobkit.local import Runtime, bounded
from jobkit.local.offline import OfflinePdfAnalyzer
from jobkit.status import COMPLETED
from jobkit.worker.worker import WorkerConfig

DOCUMENTS = 500
SLOTS = 8
SAMPLE = Path(__file__).resolve().parents[1] / "jobkit_http" / "samples" / "sample.pdf"


def _measure(pooled: bool) -> dict[str, float]:
    async def main() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as folder:
            async with Runtime(folder) as runtime, bounded.Pool(workers=2) as pool:
                runner: bounded.Runner = pool if pooled else bounded.InThread()
                runtime.analyzer = OfflinePdfAnalyzer(runtime.blobs, runner=runner)
                data = SAMPLE.read_bytes()
                started, cpu = time.perf_counter(), time.process_time()
                ids = []
                for _ in range(DOCUMENTS):
                    submitted = await runtime.submit({"type": "pdf-analysis"}, document=data)
                    ids.append(jobs.id(submitted.unwrap()))
                await runtime.drain(WorkerConfig(concurrency=SLOTS))
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                for job_id in ids:
                    job = await runtime.get(job_id)
                    assert job is not None
                    assert jobs.status(job) == COMPLETED
                return {
                    "seconds": elapsed,
                    "documents per second": DOCUMENTS / elapsed,
                    "worker process CPU seconds": cpu,
                    "children started": float(pool.started),
                }

    return asyncio.run(main())


MEASURES: dict[str, _harness.Measure] = {
    "pool of 2 child processes": lambda: _measure(pooled=True),
    "threads of the worker process (unbounded)": lambda: _measure(pooled=False),
}

if __name__ == "__main__":
    sys.exit(_harness.main(MEASURES, sys.argv[1:], runs=3))
