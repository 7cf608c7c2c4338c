"""Every file in examples/ runs offline and exits 0; an example of tests (`test_*.py`) runs
pytest on itself, and its tests pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip(), "an example shows what it did"
    if path.name.startswith("test_"):
        assert " passed" in done.stdout.splitlines()[-1]
