"""The status endpoint's speed against a bare Starlette app serving the same JSON.

Both run under uvicorn with one worker process, on loopback, driven by `wrk`
(`apt-get install wrk`) in the same run, alternating, 3 rounds of 10 s each.
The status request carries a valid bearer token, so it pays for auth, the store
read and the ETag. Run: `python benchmarks/http.py [--http httptools|h11]`: both apps
parse HTTP with the same parser (httptools, what the `http` extra installs and uvicorn
picks, by default; h11 is what the first figures were taken with).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib's `http`; keep its folder off the import path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime

import httpx

from jobkit_http import keys
from jobkit_http.samples.make_sample import build

ROUNDS = 3
SECONDS = 10
CONNECTIONS = 32
PARSER = sys.argv[sys.argv.index("--http") + 1] if "--http" in sys.argv else "httptools"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(factory: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            f"apps:{factory}",
            "--app-dir",
            str(HERE / "servers"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
            "--http",
            PARSER,
        ],
        cwd=HERE / "servers",
        env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/", timeout=0.5)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"{factory} did not start")


def wrk(url: str, token: str) -> tuple[float, float]:
    """(requests/s, p99 latency in ms)."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{SECONDS}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, p99


def main() -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        env = {"JOBKIT_DATA": str(data), "JOBKIT_LOG_LEVEL": "WARNING"}
        service, base = start("jobkit", env)
        bare = None
        try:
            token = keys.issue_token(data, "bench", now=datetime.now(UTC))
            auth = {"Authorization": f"Bearer {token}"}
            files = {"file": ("sample.pdf", build(), "application/pdf")}
            job = httpx.post(f"{base}/api/v1/pdf-processing", files=files, headers=auth).json()
            status_url = f"{base}/api/v1/jobs/{job['id']}/status"
            for _ in range(100):
                answer = httpx.get(status_url, headers=auth)
                if answer.json()["status"] == "completed":
                    break
                time.sleep(0.1)
            body = Path(folder) / "status.json"
            body.write_bytes(answer.content)
            bare, bare_base = start("bare", {"BARE_BODY": str(body)})
            bare_url = f"{bare_base}/api/v1/jobs/{job['id']}/status"
            results: dict[str, list[tuple[float, float]]] = {"jobkit": [], "bare": []}
            for _ in range(ROUNDS):
                results["jobkit"].append(wrk(status_url, token))
                results["bare"].append(wrk(bare_url, token))
        finally:
            for process in (service, bare):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=15)
    summary = {
        name: {
            "requests/s": statistics.median(r for r, _ in runs),
            "p99 ms": statistics.median(p for _, p in runs),
        }
        for name, runs in results.items()
    }
    ratio = summary["jobkit"]["requests/s"] / summary["bare"]["requests/s"]
    print(json.dumps(summary, indent=2))
    print(
        f"status endpoint at {ratio:.0%} of the bare app's rate "
        f"({ROUNDS} rounds, medians, both parsing with {PARSER})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
