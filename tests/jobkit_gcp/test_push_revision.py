"""A rehearsal of a revision change under push dispatch: two instances behind one front, as
Cloud Run serves a service; the old one is sent SIGTERM while it runs jobs. Its attempts get
the grace period the deployment sets (7 s), then are released within Cloud Run's 10 s and
rung for again; the new instance finishes them. None is lost, none is done twice.

The Cloud Tasks emulator delivers one task at a time per queue; Cloud Tasks delivers many at
once. So the test also posts doorbells to the old instance itself, as concurrent deliveries
would, to have it hold several jobs when the signal comes."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

import attrs
import httpx
import pytest
from google.cloud import storage

from jobkit import instants
from tests.jobkit_gcp import push
from tests.jobkit_gcp.conftest import Emulators, unique
from tests.jobkit_gcp.emulators import free_port
from tests.jobkit_gcp.gemini_server import GeminiServer, answer
from tests.jobkit_gcp.test_push import upload
from tests.jobkit_gcp.test_service import instance, lease_owner
from tests.jobkit_http.server import wait_for

GRACE = 7.0  # deploy/cloud-run/service.yaml's JOBKIT_GRACE_SECONDS
JOBS = 3


@pytest.mark.slow
def test_a_stopping_instance_releases_its_jobs_in_time_and_the_other_finishes_them(
    emulators: Emulators, tasks_emulator: str, gemini: GeminiServer, tmp_path: Path
) -> None:
    project, bucket = unique("revision"), unique("revision")
    storage.Client().create_bucket(bucket)
    queue = push.make_queue(tasks_emulator, project)
    gemini.default = answer(push.SUMMARY)  # the new revision's: answers at once
    hanging = GeminiServer().start()  # the old revision's: never answers in time
    hanging.default = attrs.evolve(answer(push.SUMMARY), delay=600.0)
    data = tmp_path / "data"
    with push.issuer() as google, push.Front() as front:

        def environ(stub: GeminiServer, port: int) -> dict[str, str]:
            settings = push.push_environ(
                emulators,
                tasks_emulator,
                project=project,
                bucket=bucket,
                queue=queue,
                url=front.base_url,
                gemini=stub,
                issuer=google,
            )
            return settings | {"JOBKIT_GRACE_SECONDS": str(GRACE), "JOBKIT_PORT": str(port)}

        old_port, new_port = free_port(), free_port()
        try:
            with instance(data, environ(hanging, old_port), tmp_path / "old.log") as old:
                front.backends.append(old.base_url)
                with old.client("alice") as alice:
                    submitted = [upload(alice, instructions=f"Take {n}.") for n in range(JOBS)]
                # Concurrent deliveries, as Cloud Tasks makes them, to the old instance.
                extra = [
                    threading.Thread(target=_ring, args=(old.base_url,), daemon=True)
                    for _ in range(JOBS - 1)
                ]
                for thread in extra:
                    thread.start()

                def held() -> int:
                    owners = [lease_owner(project, job_id) for job_id in submitted]
                    return sum(1 for o in owners if o and int(o.split(":")[1]) == old.process.pid)

                push.wait_until(lambda: held() == JOBS, 30, "the old instance to hold every job")
                with instance(data, environ(gemini, new_port), tmp_path / "new.log") as new:
                    front.backends.append(new.base_url)
                    signalled = time.monotonic()
                    signalled_at = push.now()
                    old.process.send_signal(signal.SIGTERM)
                    old.process.wait(timeout=15)
                    stopped = time.monotonic() - signalled
                    with new.client("alice") as alice:
                        for job_id in submitted:
                            assert wait_for(alice, job_id, timeout=60)["status"] == "completed"
                    documents = [push.stored(project, job_id) for job_id in submitted]
        finally:
            hanging.stop()

    assert stopped < 10.0, stopped  # within Cloud Run's 10 s, grace period included
    assert old.process.returncode in {0, -signal.SIGTERM}  # uvicorn re-raises the signal
    for document in documents:
        released, succeeded = document["history"]  # none lost, none done twice
        assert released["outcome"] == "released"
        assert int(released["worker"].split(":")[1]) == old.process.pid
        ended = _at(released["endedAt"])
        assert instants.plus(signalled_at, GRACE - 0.5) <= ended
        assert ended <= instants.plus(signalled_at, 10)
        assert succeeded["outcome"] == "succeeded"
        assert int(succeeded["worker"].split(":")[1]) == new.process.pid
        assert document["attempts"] == 1  # a release is not an attempt
    # The new revision analysed each document exactly once.
    assert len(gemini.calls) == JOBS
    assert len(hanging.calls) == JOBS


def _ring(base_url: str) -> None:
    """One doorbell delivered straight to an instance (it holds the request while the job
    runs, until the instance releases it)."""
    headers = {"X-Jobkit-Dispatch-Secret": push.SECRET}
    with contextlib.suppress(httpx.HTTPError):  # gone: its answer does not matter here
        httpx.post(f"{base_url}/internal/dispatch", headers=headers, timeout=60)


def _at(text: str) -> datetime:
    return instants.parse(text)
