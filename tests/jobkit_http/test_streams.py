"""The event streams over a real uvicorn server: a job's events in order with their ids,
reconnecting with `Last-Event-ID`, the final event, ownership, heartbeats, the bound on a
user's streams, a user's stream of all their jobs, other processes' writes, and streams
that end when the server stops."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobkit.local import Runtime
from jobkit.local.offline import OfflinePdfAnalyzer
from jobkit_http import views
from tests.jobkit_http.conftest import new_user
from tests.jobkit_http.server import (
    LATER,
    RunningServer,
    problem,
    serve,
    submit,
    wait_for,
)
from tests.jobkit_http.sse_client import Event, Stream, read, stream_of

P = "/api/v1"
TERMINAL = {"completed", "failed", "cancelled"}


@contextlib.contextmanager
def opened(
    client: httpx.Client, path: str, headers: dict[str, str] | None = None, **params: Any
) -> Iterator[httpx.Response]:
    with client.stream("GET", path, headers=headers or {}, params=params) as response:
        yield response


def follow(client: httpx.Client, job_id: str, **headers: str) -> Stream:
    with opened(client, f"{P}/jobs/{job_id}/events", headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        return read(stream_of(response))


# -- one job's stream ----------------------------------------------------------------------


def test_a_jobs_events_come_in_version_order_then_end(client: httpx.Client) -> None:
    job_id = submit(client, form={"delaySeconds": 1})  # opened while it is pending
    stream = follow(client, job_id)

    assert stream.ended
    assert stream.retry == 3000
    *changes, last = stream.events
    assert [e.name for e in changes] == ["status"] * len(changes)
    versions = [e.data["version"] for e in changes]
    assert versions == sorted(set(versions))  # each version once, in order
    assert [e.id for e in changes] == [str(v) for v in versions]  # the id is the version
    assert changes[0].data["status"] == "pending"
    assert any(e.data["status"] == "processing" for e in changes)
    assert changes[-1].data["status"] == "completed"
    # A job this short writes no progress of its own: its last report rides on its end.
    assert changes[-1].data["progress"] == {"current": 3, "total": 3, "message": "result saved"}
    assert changes[-1].data["resultUrl"] == f"{P}/jobs/{job_id}/result"
    assert changes[-1].data == client.get(f"{P}/jobs/{job_id}/status").json()
    assert last == Event(
        None, "end", {"id": job_id, "status": "completed", "version": versions[-1]}
    )


def test_reconnecting_with_last_event_id_sends_only_what_is_newer(client: httpx.Client) -> None:
    job_id = submit(client)
    wait_for(client, job_id)
    whole = follow(client, job_id)
    (final,) = [e for e in whole.events if e.name == "status"]  # finished: only its state
    version = final.data["version"]

    older = follow(client, job_id, **{"Last-Event-ID": str(version - 1)})
    assert [e.name for e in older.events] == ["status", "end"]
    assert older.events[0].id == str(version)

    caught_up = follow(client, job_id, **{"Last-Event-ID": str(version)})
    assert [e.name for e in caught_up.events] == ["end"]

    with opened(client, f"{P}/jobs/{job_id}/events", lastEventId=str(version)) as response:
        assert [e.name for e in read(stream_of(response)).events] == ["end"]


def test_a_cancelled_job_ends_its_stream(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)
    with opened(client, f"{P}/jobs/{job_id}/events") as response:
        stream = read(stream_of(response), stop=lambda s: len(s.events) == 1)
        assert stream.events[0].data["status"] == "pending"
        assert client.delete(f"{P}/jobs/{job_id}").status_code == 200
        read(stream)
    assert [e.name for e in stream.events] == ["status", "status", "end"]
    assert stream.events[1].data["status"] == "cancelled"
    assert stream.events[2].data["status"] == "cancelled"


def test_a_deleted_job_ends_its_stream(client: httpx.Client) -> None:
    job_id = submit(client, form=LATER)
    assert client.delete(f"{P}/jobs/{job_id}").status_code == 200
    with opened(client, f"{P}/jobs/{job_id}/events", lastEventId="2") as response:
        assert client.delete(f"{P}/jobs/{job_id}/record").status_code == 204
        stream = read(stream_of(response))
    assert [e.name for e in stream.events] in (["end"], ["deleted"])


def test_a_stream_keeps_the_api_rules(
    client: httpx.Client, other_client: httpx.Client, anonymous: httpx.Client
) -> None:
    job_id = submit(client, form=LATER)
    theirs = other_client.get(f"{P}/jobs/{job_id}/events")
    assert problem(theirs, 404)["detail"] == f"no job {job_id}"  # another user's: not found
    assert problem(anonymous.get(f"{P}/jobs/{job_id}/events"), 401)
    assert problem(anonymous.get(f"{P}/events"), 401)
    assert problem(client.get(f"{P}/jobs/not-a-job/events"), 404)
    bad = client.get(f"{P}/jobs/{job_id}/events", headers={"Last-Event-ID": "v1"})
    assert problem(bad, 422)["errors"][0]["field"] == "Last-Event-ID"
    assert problem(client.get(f"{P}/jobs/{job_id}/events", params={"since": "1"}), 422)
    assert problem(client.get(f"{P}/events", params={"status": "pending"}), 422)
    assert client.delete(f"{P}/jobs/{job_id}").status_code == 200


# -- a user's stream -----------------------------------------------------------------------


def test_a_users_stream_tells_of_their_jobs_only(
    client: httpx.Client, other_client: httpx.Client
) -> None:
    with opened(client, f"{P}/events") as response:
        stream = read(stream_of(response), stop=lambda s: len(s.events) == 1)
        assert stream.events[0] == Event(None, "ready", {})
        submit(other_client)  # someone else's: never shown here
        job_id = submit(client)

        def completed(s: Stream) -> bool:
            return any(e.data.get("status") == "completed" for e in s.events if e.name == "job")

        read(stream, stop=completed)
        client.delete(f"{P}/jobs/{job_id}/record")
        read(stream, stop=lambda s: s.events[-1].name == "deleted")
    jobs = [e for e in stream.events if e.name == "job"]
    assert {e.data["id"] for e in jobs} == {job_id}
    assert all(e.id is None for e in stream.events)  # versions of several jobs: no ids
    assert jobs[0].data["status"] == "pending"
    assert set(jobs[-1].data) == set(views.FIELDS)  # the job as the list shows it
    assert stream.events[-1] == Event(None, "deleted", {"id": job_id})


# -- heartbeats, the bound, other processes, shutdown --------------------------------------


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with quick heartbeats and room for two streams per user, no worker (jobs
    stay pending unless another process runs them) and a quick poll for such writes."""
    with serve(
        tmp_path_factory.mktemp("tight"),
        events_heartbeat_seconds=0.2,
        events_max_per_user=2,
        worker=False,
        changes_poll_seconds=0.1,
    ) as running:
        yield running


def test_a_quiet_stream_sends_heartbeats(tight: RunningServer) -> None:
    with tight.client(new_user()) as client:
        job_id = submit(client, form=LATER)
        with opened(client, f"{P}/jobs/{job_id}/events") as response:
            stream = read(stream_of(response), stop=lambda s: s.comments >= 3)
    assert [e.name for e in stream.events] == ["status"]


def test_a_user_holds_a_bounded_number_of_streams(tight: RunningServer) -> None:
    user = new_user()
    with tight.client(user) as client:
        job_id = submit(client, form=LATER)
        path = f"{P}/jobs/{job_id}/events"
        with opened(client, path) as first, opened(client, f"{P}/events") as second:
            assert first.status_code == second.status_code == 200
            refused = client.get(path)
            assert problem(refused, 429)["detail"].startswith("you have 2 event streams open")
            assert refused.headers["Retry-After"] == "5"
            with (
                tight.client(new_user()) as stranger,  # the bound is per user
                opened(stranger, f"{P}/events") as theirs,
            ):
                assert theirs.status_code == 200
        # Both left: their places are free again, as soon as the server notices.
        deadline = time.monotonic() + 10
        while True:
            with opened(client, path) as again, opened(client, path) as twice:
                if again.status_code == twice.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the streams' places were not given back"
            time.sleep(0.05)


def test_another_processs_writes_reach_the_streams(tight: RunningServer) -> None:
    user = new_user()
    with tight.client(user) as client:
        job_id = submit(client)  # the server runs no worker: it stays pending
        with opened(client, f"{P}/jobs/{job_id}/events") as response:
            stream = read(stream_of(response), stop=lambda s: len(s.events) == 1)
            ran = threading.Thread(target=drain_elsewhere, args=(tight.data,))
            ran.start()
            read(stream)
            ran.join()
    statuses = [e.data["status"] for e in stream.events if e.name == "status"]
    assert statuses[0] == "pending"
    assert statuses[-1] == "completed"
    assert stream.events[-1].name == "end"


def drain_elsewhere(data: Path) -> None:
    """Run the due jobs with a runtime of its own on the folder: another process's writes,
    as far as the server's change feed knows (it is not told of them)."""

    async def main() -> None:
        async with Runtime(data) as runtime:
            runtime.analyzer = OfflinePdfAnalyzer(runtime.blobs)
            await runtime.drain()

    asyncio.run(main())


def test_streams_end_when_the_server_stops(tmp_path: Path) -> None:
    ended: list[Stream] = []
    client = httpx.Client(timeout=30)
    try:
        with serve(tmp_path) as running:
            client.base_url = httpx.URL(running.base_url)
            client.headers.update(running.headers(new_user()))
            job_id = submit(client, form=LATER)

            def hold() -> None:
                with opened(client, f"{P}/jobs/{job_id}/events") as response:
                    ended.append(read(stream_of(response)))

            holder = threading.Thread(target=hold)
            holder.start()
            time.sleep(0.5)  # the stream is open
        holder.join(10)
    finally:
        client.close()
    # A clean end of the response: uvicorn, waiting for a stream that went on, would have
    # cancelled it after its graceful timeout (5 s here), breaking the connection.
    assert ended
    assert ended[0].ended
    assert [e.name for e in ended[0].events] == ["status"]
