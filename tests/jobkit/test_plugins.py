"""Another package adds a job type by declaring an entry point; bad declarations are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = """
from returns.result import Success
from jobkit import pipeline, registry

def echo(job, claim):
    yield from ()
    return Success(pipeline.Completion(result={"echo": True}))

JOB_TYPE = registry.JobType(name="echo", pipeline=echo, priority=70)
NOT_A_TYPE = "just a string"
OTHER_NAME = registry.JobType(name="something-else", pipeline=echo)
"""


def install_plugin(root: Path, entry: str) -> Path:
    """A minimal installed distribution: a module and its dist-info with entry points."""
    (root / "myjobs.py").write_text(MODULE)
    info = root / "myjobs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myjobs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[jobkit.job_types]\n{entry}\n")
    return root


def discover_in(path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "from jobkit import plugins, registry; r = plugins.discover(); "
        "print(registry.names(r), registry.get(r, 'echo').priority if 'echo' in r.types else '')"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(path)},
        check=False,
    )


def test_an_installed_package_adds_a_job_type(tmp_path: Path) -> None:
    found = discover_in(install_plugin(tmp_path, "echo = myjobs:JOB_TYPE"))
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "['echo', 'pdf-analysis'] 70"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("echo = myjobs:NOT_A_TYPE", "is not a JobType"),
        ("echo = myjobs:OTHER_NAME", "the names must match"),
    ],
)
def test_a_bad_declaration_is_refused_with_a_clear_error(
    tmp_path: Path, entry: str, message: str
) -> None:
    found = discover_in(install_plugin(tmp_path, entry))
    assert found.returncode != 0
    assert "ConfigurationError" in found.stderr
    assert message in found.stderr


def test_the_builtin_pdf_type_is_declared_by_jobkit_itself() -> None:
    from jobkit import plugins, registry

    assert "pdf-analysis" in registry.names(plugins.discover())
