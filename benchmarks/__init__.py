"""Benchmark scripts: whole-process figures, several runs, medians (see docs/performance.md)."""
