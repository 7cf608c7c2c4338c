"""Nothing left behind: a refused submission leaves no file, folder or row; after a crash in
the middle of uploads, every acknowledged job completes and the sweep removes the rest."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from jobkit_http import api
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.process import spawned
from tests.jobkit_http.server import SAMPLE_PDF, RunningServer, problem, serve, upload, wait_for

P = api.PREFIX
LIMIT = 64 * 1024


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (with its content) and folder under `root`, hidden ones included."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in root.rglob("*")
    }


def rows(data: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data / "jobs.db") as db:
        return sorted(db.execute("SELECT id, status FROM jobs").fetchall())


def state(server: RunningServer) -> tuple[dict[str, bytes | None], list[tuple[str, str]]]:
    return tree(server.data / "blobs"), rows(server.data)


def test_refused_submissions_leave_the_store_as_it_was(tmp_path: Path) -> None:
    environ = {"JOBKIT_MAX_UPLOAD_BYTES": str(LIMIT), "JOBKIT_USER_MAX_PENDING": "2"}
    with serve(tmp_path, environ, worker=False) as server:
        ann = new_user()
        with server.client(ann) as client, server.client() as anonymous:
            keyed = upload(client, SAMPLE_PDF, {"delaySeconds": 3600}, key="k1")
            assert keyed.status_code == 202
            before = state(server)
            over = SAMPLE_PDF + b"\n%" + b"x" * (LIMIT - len(SAMPLE_PDF))
            assert len(over) == LIMIT + 2
            refusals: list[tuple[Callable[[], httpx.Response], int]] = [
                (lambda: upload(client, over, key="k2"), 413),  # just over, at the storage step
                (lambda: upload(client, b"<html>not a pdf</html>"), 415),
                (lambda: upload(client, SAMPLE_PDF, {"priority": "high"}), 422),
                (lambda: upload(client, SAMPLE_PDF, {"queue": "Not A Queue"}), 422),
                (lambda: upload(client, SAMPLE_PDF, {"color": "red"}), 422),
                (lambda: upload(client, SAMPLE_PDF + b"%more", key="k1"), 422),  # key reused
                (lambda: upload(anonymous, SAMPLE_PDF), 401),
            ]
            for send, status in refusals:
                problem(send(), status)
                assert state(server) == before, status
            state_before_control = before
            # The control: an accepted one does change it. Then ann is at her quota.
            assert upload(client, SAMPLE_PDF, {"delaySeconds": 3600}).status_code == 202
            before = state(server)
            assert before != state_before_control
            problem(upload(client, SAMPLE_PDF), 429)
            assert state(server) == before
            # A replay of the keyed upload is answered from its job, quota or not, and the
            # copy it sent is not kept.
            replay = upload(client, SAMPLE_PDF, {"delaySeconds": 3600}, key="k1")
            assert replay.status_code == 202
            assert replay.headers["Idempotent-Replayed"] == "true"
            assert state(server) == before


def test_after_a_crash_mid_upload_acknowledged_jobs_complete_and_orphans_are_swept(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    # Large enough that storing each upload takes a while: the kill lands in the middle of
    # receiving some, of storing others, and between storing and recording a few.
    document = SAMPLE_PDF + b"\n%" + b"0" * (8 * 1024 * 1024)
    acknowledged: list[str] = []
    with spawned(data, {"JOBKIT_WORKER": "false"}) as server:
        headers = server.headers("crash-user")
        go = threading.Barrier(21)

        def client(n: int) -> None:
            go.wait()
            try:
                response = httpx.post(
                    f"{server.base_url}{P}/pdf-processing",
                    files={"file": (f"{n}.pdf", document, "application/pdf")},
                    headers=headers,
                    timeout=30,
                )
            except httpx.TransportError:
                return  # cut off by the crash
            if response.status_code == 202:
                acknowledged.append(response.json()["id"])

        clients = [threading.Thread(target=client, args=(n,)) for n in range(20)]
        for thread in clients:
            thread.start()
        go.wait()
        # Killed once an upload has been acknowledged while others are being stored (as
        # near as a poll can tell): the rest are wherever they happen to be, being received,
        # stored or recorded.
        partial = data / "blobs" / ".partial"
        deadline = time.monotonic() + 120
        while not (acknowledged and partial.exists() and any(partial.iterdir())):
            if time.monotonic() > deadline or len(acknowledged) == len(clients):
                break
            time.sleep(0.001)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        for thread in clients:
            thread.join(60)
    time.sleep(1.5)  # older than the sweep's age below

    with spawned(data, {"JOBKIT_ORPHAN_AGE_SECONDS": "1"}) as server:
        with server.client("crash-user") as user:
            for job_id in acknowledged:
                assert wait_for(user, job_id, timeout=120)["status"] == "completed"
        # Every job recorded (acknowledged or not) runs; then the store is still.
        deadline = time.monotonic() + 120
        while {"pending", "processing"} & {status for _, status in rows(data)}:
            assert time.monotonic() < deadline, rows(data)
            time.sleep(0.1)
        while '"orphan sweep"' not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.1)
        stored = dict(rows(data))
        inputs = data / "blobs" / "inputs"
        for folder in inputs.iterdir() if inputs.exists() else []:
            found = {q.name: q.stat().st_mtime for q in folder.rglob("*")}
            sweeps = [line for line in server.log.read_text().splitlines() if "sweep" in line]
            assert folder.name in stored, (folder, found, time.time(), sweeps)
            assert set(found) == {"document.pdf", ".document.pdf.meta.json"}
        assert not partial.exists()
        assert set(acknowledged) <= set(stored)
