"""`jobkit serve` as its own process, as deployed: for tests that measure or kill the server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs
import httpx

from jobkit_http import keys

START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@attrs.frozen(kw_only=True)
class Served:
    base_url: str
    data: Path
    process: subprocess.Popen[bytes]
    log: Path

    def headers(self, user: str) -> dict[str, str]:
        token = keys.issue_token(self.data, user, now=datetime.now(UTC))
        return {"Authorization": f"Bearer {token}"}

    def client(self, user: str, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers(user), timeout=timeout)

    def rss_bytes(self) -> int:
        """The server's resident memory now (VmRSS), from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc")


@contextlib.contextmanager
def spawned(data: Path, environ: Mapping[str, str] | None = None) -> Iterator[Served]:
    """`python -m jobkit_http.cli serve` on a free port; SIGTERM (then SIGKILL) at the end,
    unless the test killed it itself."""
    port = free_port()
    env = {
        **os.environ,
        "JOBKIT_DATA": str(data),
        "JOBKIT_PORT": str(port),
        "JOBKIT_GRACE_SECONDS": "1",
        **(environ or {}),
    }
    log = data.parent / f"serve-{port}.log"
    data.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobkit_http.cli", "serve"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    served = Served(base_url=f"http://127.0.0.1:{port}", data=data, process=process, log=log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{served.base_url}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
