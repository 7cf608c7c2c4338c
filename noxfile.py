"""Sessions CI runs: tests, lint, typecheck, examples (`make test` runs them all)."""

from __future__ import annotations

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


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    install(session, "test")
    session.run("pytest", *session.posargs)


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
