"""The orphan sweep over Cloud Storage (fake-gcs-server): uploads and results no job owns
are deleted once old enough, what jobs own is kept, and nothing outside jobkit's folders
is judged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from google.cloud import storage

from jobkit import events, jobs, machine, submission
from jobkit.testing import MemoryJobStore
from jobkit.worker import orphans
from jobkit_gcp.gcs import GcsBlobStore
from tests.jobkit.conformance import TYPES
from tests.jobkit_gcp.conftest import Emulators, unique


def job_with_input(store: MemoryJobStore, job_id: str, blob: str, now: datetime) -> None:
    source = jobs.Input(blob=blob, content_type="application/pdf")
    draft = submission.new_job(
        {"type": "echo"}, types=TYPES, job_id=job_id, user_id="u", now=now, input=source
    ).unwrap()
    job, _ = machine.step(draft, events.Submitted(), now).unwrap()
    assert store.insert_now(job)


def test_the_sweep_deletes_orphans_from_the_bucket_and_keeps_what_jobs_own(
    emulators: Emulators,
) -> None:
    bucket = unique("orphans")
    storage.Client().create_bucket(bucket)
    store = MemoryJobStore()
    now = datetime.now(UTC)
    job_with_input(store, "j-live", "inputs/j-live/document.pdf", now)

    async def main() -> tuple[orphans.Swept, orphans.Swept, list[str]]:
        async with GcsBlobStore(storage.Client(), bucket, prefix="team") as blobs:
            for key in (
                "inputs/j-live/document.pdf",  # its job's input: kept
                "inputs/j-gone/document.pdf",  # no job: deleted once old enough
                "results/j-gone/attempt-1.json",  # no job: deleted once old enough
                "elsewhere/j-gone/file",  # not ours to judge: kept
            ):
                await blobs.put_bytes(key, b"%PDF-", "application/pdf")
            # Objects are only as old as the clock says: young ones are spared...
            young = await orphans.sweep(store, blobs, now=now, older_than_seconds=3600)
            # ... and, an hour on, the orphans are old enough to go.
            later = now + timedelta(hours=2)
            old = await orphans.sweep(store, blobs, now=later, older_than_seconds=3600)
            left = sorted([entry.key async for entry in blobs.scan("")])
            return young, old, left

    young, old, left = asyncio.run(main())
    assert (young.deleted, young.partial, young.scanned) == ((), 0, 3)
    assert sorted(old.deleted) == ["inputs/j-gone/document.pdf", "results/j-gone/attempt-1.json"]
    assert left == ["elsewhere/j-gone/file", "inputs/j-live/document.pdf"]
