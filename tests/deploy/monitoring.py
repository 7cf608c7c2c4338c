"""What the monitoring tests share: the shipped Prometheus and Grafana files, the metric
names they use, and running `jobkit serve` and `jobkit worker` as processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULE_FILES = (PROMETHEUS / "rules.yml", PROMETHEUS / "alerts.yml")
DASHBOARD = ROOT / "deploy" / "grafana" / "jobkit.json"

_RECORD = re.compile(r"^\s*- record: (\S+)\s*$", re.MULTILINE)
_METRIC = re.compile(r"(?<![\w:$])((?:jobkit|process)_[a-z0-9_]+)\b")
_RECORDED = re.compile(r"(?<![\w$])(jobkit:[a-z0-9_:]+)")


def missing_tool(name: str) -> str:
    return f"{name} is missing: install the Debian package prometheus (.ci/run does)"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found is not None, missing_tool(name)
    return found


def recorded() -> set[str]:
    """The series the recording rules make."""
    return set(_RECORD.findall((PROMETHEUS / "rules.yml").read_text()))


def rule_texts() -> list[str]:
    """The rule files' text: a metric name can only be in an expression (recorded series
    are `jobkit:…`, alert names capitalised, annotations name labels)."""
    return [path.read_text() for path in RULE_FILES]


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def dashboard_expressions() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]


def metric_names(expressions: list[str]) -> set[str]:
    """The exported metrics the expressions read (not the recorded `jobkit:` series)."""
    return {name for expr in expressions for name in _METRIC.findall(expr)}


def recorded_names(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in _RECORDED.findall(expr)}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def jobkit_process(
    command: list[str], log: Path, environ: dict[str, str], ready: str
) -> Iterator[subprocess.Popen[str]]:
    """`jobkit COMMAND` until the block ends (SIGTERM, then its exit awaited); started once
    its log has a line with `ready`."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobkit_http.cli", *command],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "JOBKIT_LOG_FORMAT": "json", **environ},
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while ready not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def scrape(url: str) -> str:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text
    return response.text
