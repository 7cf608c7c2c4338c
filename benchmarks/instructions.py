"""Instructions one submission costs on the embedded default, counted by valgrind's callgrind:
deterministic where wall-clock time on a shared machine is not.

`Runtime.submit` awaited one at a time (as `queue.py`'s one-at-a-time enqueue), and
`Runtime.submit_many` 500 per call (as `queue.py`'s `enqueue_many`), on a fresh SQLite
file. Each count is a whole process run under callgrind twice, with few and with many
submissions after the same warm-up; the difference over the extra submissions is the cost
of one, start-up and warm-up cancelled out.

Run: `python benchmarks/instructions.py [--code PATH ...]` (needs valgrind): each PATH is a
checkout whose `jobkit` is measured (put first on the import path), e.g. `--code . --code
/tmp/fair-base` for this branch against another commit's code. Without `--code`: this checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder holds a `queue.py`, named like the stdlib's module: leave it off the path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import asyncio
import os
import re
import subprocess
import tempfile

FEW, MANY = 200, 1200
WARM = 100
SCRIPT = str(Path(__file__).resolve())


async def _submit(folder: str, count: int, bulk: bool) -> None:
    from returns.result import Success

    from jobkit import jobs, pipeline, registry
    from jobkit.local import Runtime

    def noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        yield from ()
        return Success(pipeline.Completion())

    types = registry.of([registry.JobType(name="noop", pipeline=noop)])
    async with Runtime(folder, types=types) as runtime:
        if bulk:  # `submit_many`, 500 per call
            for offset in range(0, WARM + count, 500):
                size = min(500, WARM + count - offset)
                for outcome in await runtime.submit_many([{"type": "noop"}] * size):
                    outcome.unwrap()
            return
        for _ in range(WARM + count):
            (await runtime.submit({"type": "noop"})).unwrap()


def _inner(count: int, bulk: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_submit(folder, count, bulk))


def _instructions(code: str, count: int, bulk: bool) -> int:
    """Instructions executed by one process that makes `count` submissions."""
    with tempfile.TemporaryDirectory() as out:
        report = os.path.join(out, "callgrind.out")
        env = {**os.environ, "PYTHONPATH": code, "PYTHONHASHSEED": "0"}
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={report}",
                sys.executable,
                SCRIPT,
                "--inner",
                str(count),
                "bulk" if bulk else "one",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        text = Path(report).read_text()
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if found is None:
        raise SystemExit("callgrind wrote no total")
    return int(found.group(1))


def per_submission(code: str, bulk: bool = False) -> float:
    few, many = (FEW * 5, MANY * 5) if bulk else (FEW, MANY)
    return (_instructions(code, many, bulk) - _instructions(code, few, bulk)) / (many - few)


def main(argv: list[str]) -> int:
    codes = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--code"] or ["."]
    for code in codes:
        path = str(Path(code).resolve())
        one, bulk = per_submission(path), per_submission(path, bulk=True)
        print(f"{path}: {one:,.0f} instructions per `submit`, {bulk:,.0f} per job of `submit_many`")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        _inner(int(sys.argv[2]), sys.argv[3] == "bulk")
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
