"""Benchmark harness: run one measurement in several fresh processes and report medians."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

Measure = Callable[[], dict[str, float]]


def main(measures: dict[str, Measure], argv: Sequence[str], runs: int = 5) -> int:
    """`script.py` runs each measure `runs` times in fresh processes; `script.py --once NAME`
    runs one measure in this process and prints its figures as JSON.

    The runs are interleaved (round 1 of every measure, then round 2...), so that the noise
    of a shared machine falls on every measure alike, above all on those compared."""
    if len(argv) == 2 and argv[0] == "--once":
        print(json.dumps(measures[argv[1]]()))
        return 0
    if argv and argv[0] == "--runs":
        runs = int(argv[1])
    samples_of: dict[str, list[dict[str, Any]]] = {name: [] for name in measures}
    for _ in range(runs):
        for name in measures:
            done = subprocess.run(
                [sys.executable, sys.argv[0], "--once", name],
                capture_output=True,
                text=True,
                check=True,
            )
            samples_of[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    report(samples_of, runs)
    return 0


def report(samples_of: dict[str, list[dict[str, Any]]], runs: int, digits: int = 1) -> None:
    """Each run's figures: the median of its samples, then their range."""
    for name, samples in samples_of.items():
        print(f"{name} (median of {runs} processes)")
        for key in samples[0]:
            values = [sample[key] for sample in samples]
            low, high = min(values), max(values)
            middle = statistics.median(values)
            print(
                f"  {key:<34} {middle:>14,.{digits}f}"
                f"   (min {low:,.{digits}f}, max {high:,.{digits}f})"
            )
