"""The child side of `jobkit.local.bounded`: run tasks from stdin under resource limits.

Run as `python -m jobkit.local.bounded_child MEMORY_BYTES`. It reads length-prefixed pickled
tasks `(fn, args, cpu_seconds)` from stdin and writes length-prefixed pickled messages:
`("ready",)` once, when it can take tasks; then, per task, `("progress", current, total,
message)` any number of times and one of `("done", answer)`, `("memory",)` (the task ran
out of its address space; the child then exits) or `("raised", exception type, traceback
text)`. End of input ends the child.

The pipe is the parent's and trusted: pickle is safe here. The document never chooses
what is unpickled; it is only an argument of a function the parent named.
"""

from __future__ import annotations

import logging
import os
import pickle
import resource
import struct
import sys
import traceback
from typing import Any, BinaryIO

_HEADER = struct.Struct("!Q")
NICENESS = 10


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _allow_cpu(seconds: float) -> None:
    """Let this task use `seconds` more of CPU time: the kernel counts the process's total,
    so each task's limit is what was used so far plus its allowance."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(_cpu_used() + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _limit_memory(memory_bytes: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        memory_bytes = min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a killed child leaves no core file


def main() -> int:
    memory_bytes = int(sys.argv[1])
    # The protocol owns the real stdout; anything printed by the work goes to stderr.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    tasks = sys.stdin.buffer
    # Parsers log the defects they work around; in here nobody reads those lines.
    logging.disable(logging.WARNING)
    _limit_memory(memory_bytes)
    # Parsing yields the CPU to the service it works for: the API answers first.
    os.nice(NICENESS)

    def send(message: Any) -> None:
        frame = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_HEADER.pack(len(frame)) + frame)

    def report(current: int, total: int, message: str) -> None:
        send(("progress", current, total, message))

    send(("ready",))

    while True:
        header = _read_exactly(tasks, _HEADER.size)
        if header is None:
            return 0
        (size,) = _HEADER.unpack(header)
        frame = _read_exactly(tasks, size)
        if frame is None:
            return 0
        out_of_memory = False
        try:
            fn, args, cpu_seconds = pickle.loads(frame)
            del frame
            _allow_cpu(cpu_seconds)
            answer = fn(report, *args)
        except MemoryError:
            out_of_memory = True
        except Exception as exc:
            send(("raised", type(exc).__name__, traceback.format_exc()))
            continue
        if out_of_memory:  # out here, the task's frames (and what they held) are released
            send(("memory",))
            return 0
        send(("done", answer))
        del answer


if __name__ == "__main__":
    sys.exit(main())
