"""Documents generated from code are current, and code in the how-tos runs."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = str(ROOT / "pyproject.toml")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


@pytest.mark.parametrize("path", sorted(GENERATOR.GENERATED), ids=lambda p: p.name)
def test_generated_document_is_current(path: Path) -> None:
    assert path.read_text() == GENERATOR.GENERATED[path](), "run: python docs/generate.py"


def test_diagram_has_an_arrow_for_every_status_change() -> None:
    from jobkit import status

    text = status.mermaid()
    for (source, kind), targets in status.TRANSITIONS.items():
        for target in targets - {source}:
            left = "[*]" if source is None else source.value
            assert f"{left} --> {target.value}: {kind}" in text


def test_the_code_of_the_how_to_on_testing_a_job_type_is_a_passing_test_module(
    tmp_path: Path,
) -> None:
    text = (ROOT / "docs" / "how-to" / "test-a-job-type.md").read_text()
    module = tmp_path / "test_how_to.py"
    module.write_text("\n\n".join(re.findall(r"```python\n(.*?)```", text, re.DOTALL)))
    done = subprocess.run(
        # Under the project's pytest settings (warnings are errors), as the suite runs.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", PYPROJECT, module],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("4 passed")
