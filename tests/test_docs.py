"""Documents generated from code are current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
