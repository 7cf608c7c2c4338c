"""A real jobkit server for the API tests: uvicorn on 127.0.0.1, in a thread with its own loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import uvicorn
from starlette.types import ASGIApp

from jobkit import jobs, records, registry
from jobkit_http import keys, problems, samples, settings, sse
from jobkit_http.app import create_app

SAMPLE_PDF = Path(samples.__file__).with_name("sample.pdf").read_bytes()
# Passes the upload check (it starts with %PDF-) and fails analysis: `corrupt_document`.
CORRUPT_PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4
START_SECONDS = 20.0
STOP_SECONDS = 20.0
# Short enough that stopping a server with a job running does not stall the suite.
TEST_OVERRIDES: dict[str, Any] = {"grace_seconds": 1.0, "lease_seconds": 10.0}


@attrs.frozen(kw_only=True)
class RunningServer:
    """What a test needs of a running server: where it listens, its data folder, tokens."""

    base_url: str
    data: Path
    settings: settings.Settings

    def token(self, user: str) -> str:
        """A local-mode bearer token for `user`, signed with the server's own key."""
        return keys.issue_token(self.data, user, now=datetime.now(UTC))

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    @contextlib.contextmanager
    def client(self, user: str | None = None, *, timeout: float = 30.0) -> Iterator[httpx.Client]:
        """An `httpx.Client` on this server, authenticated as `user` when one is given."""
        headers = self.headers(user) if user is not None else {}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout) as client:
            yield client


@contextlib.contextmanager
def serve(
    data: Path,
    environ: Mapping[str, str] | None = None,
    *,
    types: registry.Registry | None = None,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    **overrides: Any,
) -> Iterator[RunningServer]:
    """Run `create_app` under uvicorn (`sse.Server`, as `jobkit serve` does) on a free port
    until the block ends.

    Settings come from `environ` (`JOBKIT_*` variables) and `overrides`, as in production,
    with `data` as the data folder; `types`, the job types (the installed ones by default);
    `wrap`, an ASGI middleware put around the app (to watch its traffic). Startup failures
    are raised here, not hidden in the thread.
    """
    chosen = settings.from_env(environ or {}, **{**TEST_OVERRIDES, "data": data, **overrides})
    app = create_app(chosen, types=types)
    config = uvicorn.Config(
        app if wrap is None else wrap(app),
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = sse.Server(config, app.state.streams.stop)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="jobkit-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(STOP_SECONDS)
            raise RuntimeError(f"the test server did not start: {failure!r}")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(base_url=f"http://127.0.0.1:{port}", data=data, settings=chosen)
    finally:
        server.should_exit = True
        thread.join(STOP_SECONDS)
        if thread.is_alive():
            raise RuntimeError("the test server did not stop")
        if failure and not isinstance(failure[0], SystemExit):
            raise failure[0]


# -- talking to it -----------------------------------------------------------------------

FINISHED = frozenset({"completed", "failed", "cancelled"})
LATER = {"delaySeconds": 3600}  # keeps a job pending for the whole test


def upload(
    client: httpx.Client,
    document: bytes = SAMPLE_PDF,
    form: Mapping[str, object] | None = None,
    *,
    key: str | None = None,
    filename: str = "sample.pdf",
) -> httpx.Response:
    """POST /api/v1/pdf-processing: `document` as the `file` part, `form` as text fields."""
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(
        "/api/v1/pdf-processing",
        files={"file": (filename, document, "application/pdf")},
        data={name: str(value) for name, value in (form or {}).items()},
        headers=headers,
    )


def submit(
    client: httpx.Client, document: bytes = SAMPLE_PDF, form: Mapping[str, object] | None = None
) -> str:
    """Upload and return the new job's id (the answer must be `202`)."""
    response = upload(client, document, form)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def wait_for(
    client: httpx.Client, job_id: str, statuses: frozenset[str] = FINISHED, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the status endpoint until the job's status is one of `statuses`: a plain read,
    then long polls on its ETag (without one, `?wait=` waits for a change from whatever the
    status is now, which may already be the one wanted)."""
    deadline = time.monotonic() + timeout
    params: dict[str, float] = {}
    headers: dict[str, str] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/jobs/{job_id}/status", params=params, headers=headers)
        if response.status_code == 304:
            continue
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        if document["status"] in statuses:
            return document
        params = {"wait": 5}
        headers = {"If-None-Match": response.headers["ETag"]}
    raise AssertionError(f"job {job_id} did not reach {sorted(statuses)} in {timeout} s")


def finished(client: httpx.Client, document: bytes = SAMPLE_PDF) -> dict[str, Any]:
    """A job run to its end; its full document."""
    job_id = submit(client, document)
    wait_for(client, job_id)
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200
    job: dict[str, Any] = response.json()
    return job


def blob(server: RunningServer, key: str) -> Path:
    return server.data / "blobs" / key


def stored(server: RunningServer, job_id: str) -> jobs.Job:
    """The job as the server's store holds it (the API leaves out where its files are)."""
    with contextlib.closing(sqlite3.connect(server.data / "jobs.db")) as db:
        (doc,) = db.execute("SELECT doc FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return records.from_json(doc)


def input_blob(server: RunningServer, job_id: str) -> Path:
    """Where the server stored the job's input document."""
    source = jobs.input(stored(server, job_id))
    assert source is not None
    return blob(server, source.blob)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert `response` is an RFC 9457 problem with `status`; return its document."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == problems.MEDIA_TYPE
    document: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= document.keys(), document
    assert document["status"] == status
    assert document["type"].startswith(problems.TYPES)
    assert document["title"]
    assert document["detail"]
    return document


def fields_of(document: dict[str, Any]) -> list[str]:
    """The fields a `422` problem names, one per entry of its `errors`."""
    return [entry["field"] for entry in document.get("errors", [])]
