"""The container, without a container engine (none runs on these machines): hadolint accepts
the Dockerfile, which keeps the rules the image must keep, and the build context holds the
sources only. (`tests/jobkit_gcp/test_image.py` runs what the image would run.)"""

from __future__ import annotations

import json
import subprocess

from tests.deploy.container import (
    DOCKERFILE,
    DOCKERIGNORE,
    hadolint,
    image_environment,
    instructions,
)


def test_hadolint_accepts_the_dockerfile() -> None:
    linted = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_dockerfile_keeps_the_images_rules() -> None:
    steps = instructions(DOCKERFILE.read_text())
    froms = [s.arguments for s in steps if s.keyword == "FROM"]
    assert froms == ["python:3.11-slim AS build", "python:3.11-slim"]  # slim 3.11, two stages
    build = [s for s in steps if s.stage == 0]
    final = [s for s in steps if s.stage == 1]
    # The dependencies in a layer of their own, before any code is copied.
    order = [s.keyword + " " + s.arguments for s in build]
    deps = next(i for i, s in enumerate(order) if "--requirement requirements.txt" in s)
    code = next(i for i, s in enumerate(order) if s.startswith("COPY jobkit "))
    assert deps < code
    assert order[deps - 1] == "COPY pyproject.toml deploy/container/requirements.py ./"
    # No caches, no build tools: pip caches nothing, and the final stage takes only the
    # virtual environment, from which pip itself was removed.
    for step in build:
        if "pip install" in step.arguments:
            assert "--no-cache-dir" in step.arguments, step
    assert any("pip uninstall --yes pip setuptools" in s.arguments for s in build)
    copies = [s.arguments for s in final if s.keyword == "COPY"]
    assert copies == ["--from=build /opt/jobkit /opt/jobkit"]
    assert not [s for s in final if s.keyword == "RUN" and ("apt" in s.arguments)]
    # A user who is not root runs it.
    users = [s.arguments for s in final if s.keyword == "USER"]
    assert users
    assert users[-1] not in {"0", "root"}
    # `jobkit serve`, which listens on 0.0.0.0:$PORT when PORT is set, logging JSON.
    [command] = [json.loads(s.arguments) for s in final if s.keyword == "CMD"]
    assert command == ["jobkit", "serve"]
    env = image_environment()
    assert env["JOBKIT_LOG_FORMAT"] == "json"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_the_build_context_leaves_out_everything_but_the_sources() -> None:
    lines = [line for line in DOCKERIGNORE.read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "**"  # everything out, then what the image needs back in
    assert set(lines[1:]) >= {
        "!pyproject.toml",
        "!README.md",
        "!jobkit/",
        "!jobkit_gcp/",
        "!jobkit_http/",
        "!deploy/container/requirements.py",
    }
    copied = {
        part
        for s in instructions(DOCKERFILE.read_text())
        if s.keyword == "COPY" and not s.arguments.startswith("--from")
        for part in s.arguments.split()[:-1]
    }
    kept = {line[1:].rstrip("/") for line in lines[1:] if line.startswith("!")}
    assert copied <= kept, copied - kept
