"""Sessions CI runs: tests, lint, typecheck, examples (`make test` runs them all)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["lint", "typecheck", "tests", "examples"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"


def install(session: nox.Session, *groups: str, extras: str = "http,gcp") -> None:
    session.install("--upgrade", "pip")
    packages = [p for group in groups for p in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", f".[{extras}]", *packages)


def tasks_emulator(session: nox.Session) -> str:
    """The Cloud Tasks emulator, in an environment of its own (it pins protobuf below 5, which
    the Google clients have left behind); the path of its script, for the tests."""
    where = Path(".nox") / "tasks-emulator"
    script = where / "bin" / "gcloud-tasks-emulator"
    if not script.exists():
        session.run("python", "-m", "venv", str(where))
        wanted = nox.project.dependency_groups(PYPROJECT, "tasks-emulator")
        session.run(str(where / "bin" / "pip"), "install", "--quiet", *wanted, external=True)
    return str(script.resolve())


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    install(session, "test")
    emulator = tasks_emulator(session)
    session.run("pytest", *session.posargs, env={"JOBKIT_TASKS_EMULATOR": emulator})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    install(session, "typecheck", "test")
    session.run("mypy")


@nox.session(python=PYTHON)
def examples(session: nox.Session) -> None:
    install(session, "test")
    session.run("pytest", "tests/test_examples.py", "-q")
