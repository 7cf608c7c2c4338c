"""Wake-ups through the API: a job posted to `jobkit serve` (its own worker off) starts in a
worker process on the same data folder when the API rings, not at the worker's next poll."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.jobkit.local import doorbell_worker
from tests.jobkit_http.server import serve, wait_for

WORKER = Path(doorbell_worker.__file__)


def test_a_job_posted_to_the_api_starts_in_a_worker_process_it_rang(tmp_path: Path) -> None:
    with (
        serve(tmp_path, worker=False, types=doorbell_worker.TYPES) as running,
        running.client("someone") as client,
    ):
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
            for _ in range(3):  # the first may be found by the worker's first look
                response = client.post("/api/v1/jobs", json={"type": "noop"})
                assert response.status_code == 202, response.text
                # The worker polls once an hour: only a ring gets the job done in time.
                done = wait_for(client, response.json()["id"], timeout=60)
                assert done["status"] == "completed"
                time.sleep(0.1)  # the worker is idle again, asleep
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=30)
