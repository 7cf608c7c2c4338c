"""The import rules: the core pulls in no I/O library, and pure modules touch no clock,
randomness, environment, disk, database or event loop."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "jobkit"

# The shell: allowed side effects, stdlib only.
SHELL_PACKAGES = ("worker", "local", "testing")
SHELL_MODULES = {"plugins.py", "ports.py"}
FORBIDDEN_IN_PURE = {
    "time",
    "random",
    "uuid",
    "os",
    "sqlite3",
    "asyncio",
    "secrets",
    "socket",
    "threading",
    "subprocess",
    "pathlib",
    "io",
    "shutil",
    "tempfile",
    "importlib",
}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
HEAVY = ["google", "starlette", "uvicorn", "httpx", "prometheus_client", "jwt"]


def pure_modules() -> list[Path]:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        relative = path.relative_to(CORE)
        if relative.parts[0] in SHELL_PACKAGES or relative.name in SHELL_MODULES:
            continue
        found.append(path)
    return found


def test_there_are_pure_modules_to_check() -> None:
    names = {p.name for p in pure_modules()}
    assert {"machine.py", "jobs.py", "retry.py", "status.py", "effects.py"} <= names


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_no_side_effect_library(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN_IN_PURE]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_IN_PURE:
                bad.append(node.module)
        elif isinstance(node, ast.AsyncFunctionDef | ast.Await):
            bad.append(f"async code at line {node.lineno}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
        ):
            bad.append(f"clock call .{node.func.attr}() at line {node.lineno}")
    assert bad == []


@pytest.mark.parametrize(
    ("package", "must_not_load"),
    [
        ("jobkit", HEAVY),
        ("jobkit.testing", [*HEAVY, "hypothesis"]),
        ("jobkit.worker", HEAVY),
        ("jobkit.local", [*HEAVY, "pypdf", "hypothesis"]),
        ("jobkit_gcp", ["starlette", "uvicorn", "prometheus_client"]),
    ],
)
def test_import_pulls_in_no_heavier_package(package: str, must_not_load: list[str]) -> None:
    code = (
        f"import json, sys; import {package}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded & set(must_not_load) == set()


def test_core_namespace_lists_exactly_its_public_modules() -> None:
    import jobkit

    modules = {
        p.stem
        for p in CORE.glob("*.py")
        if not p.stem.startswith("_") and p.name not in SHELL_MODULES
    }
    assert set(jobkit.__all__) == modules
    assert all(hasattr(jobkit, name) for name in jobkit.__all__)


# The core's own dependencies; the shell may use them besides the stdlib.
CORE_DEPENDENCIES = {"attrs", "pyrsistent", "returns", "jobkit"}
# Shell modules (or folders) for an optional extra: never imported by their package's
# `__init__`, so `import jobkit.local` and `import jobkit.testing` stay light (checked above).
OPTIONAL_SHELL_IMPORTS = {"local/offline.py": {"pypdf"}, "testing/strategies": {"hypothesis"}}


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(CORE.rglob("*.py")) if p.relative_to(CORE).parts[0] in SHELL_PACKAGES],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_shell_uses_the_stdlib_only(path: Path) -> None:
    allowed = sys.stdlib_module_names | CORE_DEPENDENCIES
    relative = path.relative_to(CORE)
    for place in (relative, *relative.parents):
        allowed |= OPTIONAL_SHELL_IMPORTS.get(str(place), set())
    assert _top_level_imports(path) - allowed == set()


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_none_of_its_shell_nor_the_outer_packages(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            named.add(node.module)
            named |= {f"{node.module}.{a.name}" for a in node.names}
    shell = tuple(f"jobkit.{name}" for name in SHELL_PACKAGES)
    bad = {
        name
        for name in named
        if name.startswith(shell) or name.split(".")[0] in {"jobkit_http", "jobkit_gcp"}
    }
    assert bad == set()


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_jobkit_imports_neither_outer_package(path: Path) -> None:
    assert _top_level_imports(path) & {"jobkit_http", "jobkit_gcp"} == set()
