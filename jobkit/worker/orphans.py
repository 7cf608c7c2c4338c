"""The orphan sweep: delete uploaded files that no job refers to, once they are old enough.

An upload is stored before its job, and a crash in between (or in the middle of the upload)
leaves a file with no job. So do a crash between deleting a job's record and its files, and
a replayed keyed upload whose twin's job kept its own file. Such files are found by listing
the blob store: a file under `inputs/{job id}/` is kept only while that job exists and its
input is that very file; one under `results/{job id}/` only while that job exists. A direct
upload (`uploads/{owner}/{upload id}/…`, see `jobkit_http.direct`) becomes the input of the
job whose id is its upload id, and is kept only while that job's input is that file. Files
younger than `older_than_seconds` are never touched: their upload or job may be under way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import attrs

from jobkit import instants, jobs, ports

log = logging.getLogger("jobkit.orphans")

PREFIXES = ("inputs/", "results/", "uploads/")
_REPORTED = 20  # keys named in the sweep's log line; the count is always whole


@attrs.frozen(kw_only=True)
class Swept:
    scanned: int
    deleted: tuple[str, ...]
    partial: int


def owner(key: str) -> str | None:
    """The id of the job a blob key belongs to (`inputs/{id}/…`, `results/{id}/…`,
    `uploads/{owner}/{id}/…`)."""
    parts = key.split("/")
    if parts[0] == "uploads":
        return parts[2] if len(parts) >= 4 else None
    if len(parts) >= 3 and f"{parts[0]}/" in PREFIXES:
        return parts[1]
    return None


def kept(key: str, job: jobs.Job | None) -> bool:
    """Whether `job` (the one `owner(key)` names, None if missing) still needs `key`."""
    if job is None:
        return False
    if key.startswith(("inputs/", "uploads/")):
        source = jobs.input(job)
        return source is not None and source.blob == key
    return True


async def sweep(
    store: ports.JobStore, blobs: ports.BlobStore, *, now: datetime, older_than_seconds: float
) -> Swept:
    """Delete every orphaned upload or result last written over `older_than_seconds` ago,
    and the leftovers of writes that never finished."""
    cutoff = instants.plus(now, -older_than_seconds)
    partial = await blobs.discard_partial(cutoff)
    scanned = 0
    deleted: list[str] = []
    for prefix in PREFIXES:
        async for entry in blobs.scan(prefix):
            scanned += 1
            job_id = owner(entry.key)
            if job_id is None or entry.updated >= cutoff:
                continue
            if not kept(entry.key, await store.get(job_id)):
                await blobs.delete(entry.key)
                deleted.append(entry.key)
    return Swept(scanned=scanned, deleted=tuple(deleted), partial=partial)


async def sweep_every(
    store: ports.JobStore,
    blobs: ports.BlobStore,
    *,
    clock: Callable[[], datetime],
    older_than_seconds: float,
    every_seconds: float,
) -> None:
    """Sweep now, then every `every_seconds`, until cancelled; each sweep logged, a failed
    one too (the next one tries again)."""
    while True:
        try:
            swept = await sweep(store, blobs, now=clock(), older_than_seconds=older_than_seconds)
        except Exception:  # housekeeping must not stop the service; say so and go on
            log.exception("the orphan sweep failed")
        else:
            level = logging.WARNING if swept.deleted or swept.partial else logging.INFO
            log.log(
                level,
                "orphan sweep",
                extra={
                    "scanned": swept.scanned,
                    "deleted": len(swept.deleted),
                    "keys": list(swept.deleted[:_REPORTED]),
                    "partial": swept.partial,
                    "olderThanSeconds": older_than_seconds,
                },
            )
        await asyncio.sleep(every_seconds)
