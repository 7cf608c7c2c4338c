"""Upgrading a Firestore collection to turns: pending jobs stored before lack the field, and a
claim query ordered by it would never see them; `firestore_turns.fill` gives them turn 0."""

from __future__ import annotations

import asyncio

from google.cloud import firestore

from jobkit import jobs
from jobkit_gcp import firestore_documents, firestore_turns
from jobkit_gcp.firestore import FirestoreJobStore
from tests.jobkit.conformance import T0, at, claimed, ids, new
from tests.jobkit_gcp.conftest import Emulators, unique


def test_fill_gives_pending_jobs_stored_before_turns_turn_0(emulators: Emulators) -> None:
    async def main() -> None:
        client = firestore.AsyncClient(project=unique("turns"))
        async with FirestoreJobStore(client) as store:
            old = [new(n, created=at(n)) for n in range(350)]  # more than a page
            running = claimed(new(400), T0)
            for job in [*old, running]:
                fields = firestore_documents.to_fields(job)
                del fields["turn"]
                await client.collection("jobs").document(jobs.id(job)).create(fields)
            assert await store.claimable(at(999), None, 5) == []  # invisible to claims
            assert await firestore_turns.fill(store) == 350
            assert ids(await store.claimable(at(999), None, 2)) == ["job-0000", "job-0001"]
            assert await store.get("job-0349") == old[349]  # turn 0, as it was read
            assert await store.get("job-0400") == running  # not pending: left as it was
            assert await firestore_turns.fill(store) == 0

    asyncio.run(main())
