"""The orphan sweep on a real file blob store: what it deletes, what it must keep."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobkit import events, jobs, machine, submission
from jobkit.local import FileBlobStore
from jobkit.testing import MemoryJobStore
from jobkit.worker import orphans
from tests.jobkit.conformance import TYPES

HOUR = 3600.0
NOW = datetime.now(UTC)


def job_with_input(store: MemoryJobStore, job_id: str, blob: str | None) -> jobs.Job:
    source = (
        None
        if blob is None
        else jobs.Input(blob=blob, content_type="application/pdf", filename="a.pdf", size=1)
    )
    draft = submission.new_job(
        {"type": "echo"}, types=TYPES, job_id=job_id, user_id="u", now=NOW, input=source
    ).unwrap()
    job, _ = machine.step(draft, events.Submitted(), NOW).unwrap()
    assert store.insert_now(job)
    return job


async def put(blobs: FileBlobStore, root: Path, key: str, age: float) -> None:
    await blobs.put_bytes(key, b"%PDF-", "application/pdf")
    then = (NOW - timedelta(seconds=age)).timestamp()
    os.utime(root / key, (then, then))


def test_the_sweep_deletes_old_orphans_and_keeps_everything_in_use(tmp_path: Path) -> None:
    store, blobs = MemoryJobStore(), FileBlobStore(tmp_path)
    job_with_input(store, "j-live", "inputs/j-live/document.pdf")
    job_with_input(store, "j-keyed", "inputs/j-keyed/aaa/document.pdf")
    job_with_input(store, "j-plain", None)

    async def main() -> orphans.Swept:
        for key, age in [
            ("inputs/j-live/document.pdf", 2 * HOUR),  # its job's input: kept
            ("inputs/j-keyed/aaa/document.pdf", 2 * HOUR),  # its job's input: kept
            ("inputs/j-keyed/bbb/document.pdf", 2 * HOUR),  # a replay's copy: deleted
            ("inputs/j-gone/document.pdf", 2 * HOUR),  # no job: deleted
            ("inputs/j-new/document.pdf", 60),  # no job yet, but young: kept
            ("results/j-plain/attempt-1.json", 2 * HOUR),  # its job exists: kept
            ("results/j-gone/attempt-1.json", 2 * HOUR),  # no job: deleted
            ("elsewhere/j-gone/file", 2 * HOUR),  # not ours to judge: kept
        ]:
            await put(blobs, tmp_path, key, age)
        return await orphans.sweep(store, blobs, now=NOW, older_than_seconds=HOUR)

    swept = asyncio.run(main())

    assert sorted(swept.deleted) == [
        "inputs/j-gone/document.pdf",
        "inputs/j-keyed/bbb/document.pdf",
        "results/j-gone/attempt-1.json",
    ]
    assert swept.scanned == 7
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert [name for name in left if "/." not in name] == [
        "elsewhere/j-gone/file",
        "inputs/j-keyed/aaa/document.pdf",
        "inputs/j-live/document.pdf",
        "inputs/j-new/document.pdf",
        "results/j-plain/attempt-1.json",
    ]
    assert not (tmp_path / "inputs/j-gone").exists()  # no empty folder left either


def test_the_sweep_discards_writes_a_crash_cut_short(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    file, temp = blobs._open_temp("inputs/j-cut/document.pdf")
    file.write(b"%PDF-half")
    file.close()
    then = (NOW - timedelta(hours=2)).timestamp()
    os.utime(temp, (then, then))

    swept = asyncio.run(orphans.sweep(MemoryJobStore(), blobs, now=NOW, older_than_seconds=HOUR))

    assert swept.partial == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("inputs/j1/document.pdf", "j1"),
        ("inputs/j1/k/document.pdf", "j1"),
        ("results/j2/attempt-1.json", "j2"),
        ("inputs/j1", None),
        ("other/j1/x", None),
    ],
)
def test_owner_reads_the_job_id_from_the_key(key: str, expected: str | None) -> None:
    assert orphans.owner(key) == expected


def test_sweeping_every_so_often_logs_each_sweep_until_cancelled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, blobs = MemoryJobStore(), FileBlobStore(tmp_path)

    async def main() -> None:
        await put(blobs, tmp_path, "inputs/j-gone/document.pdf", 2 * HOUR)
        task = asyncio.create_task(
            orphans.sweep_every(
                store,
                blobs,
                clock=lambda: datetime.now(UTC),
                older_than_seconds=HOUR,
                every_seconds=0.05,
            )
        )
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="jobkit.orphans"):
        asyncio.run(main())
    sweeps = [r for r in caplog.records if r.getMessage() == "orphan sweep"]
    assert len(sweeps) >= 2
    assert sweeps[0].levelno == logging.WARNING
    assert sweeps[0].__dict__["keys"] == ["inputs/j-gone/document.pdf"]
    assert sweeps[1].levelno == logging.INFO
    assert sweeps[1].__dict__["deleted"] == 0


def test_a_direct_upload_is_kept_while_the_job_named_by_its_id_uses_it(tmp_path: Path) -> None:
    store, blobs = MemoryJobStore(), FileBlobStore(tmp_path)
    used = "uploads/0123abcd/j-up/document.pdf"
    job_with_input(store, "j-up", used)
    job_with_input(store, "j-other", "inputs/j-other/document.pdf")
    assert orphans.owner(used) == "j-up"
    assert orphans.owner("uploads/0123abcd/j-up") is None  # not an upload's object

    async def main() -> orphans.Swept:
        for key, age in [
            (used, 2 * HOUR),  # its job's input: kept
            ("uploads/0123abcd/j-other/document.pdf", 2 * HOUR),  # that job uses another file
            ("uploads/0123abcd/j-none/document.pdf", 2 * HOUR),  # never submitted: deleted
            ("uploads/0123abcd/j-soon/document.pdf", 60),  # may be submitted yet: kept
        ]:
            await put(blobs, tmp_path, key, age)
        return await orphans.sweep(store, blobs, now=NOW, older_than_seconds=HOUR)

    swept = asyncio.run(main())
    assert sorted(swept.deleted) == [
        "uploads/0123abcd/j-none/document.pdf",
        "uploads/0123abcd/j-other/document.pdf",
    ]
    assert (tmp_path / used).exists()
    assert (tmp_path / "uploads/0123abcd/j-soon/document.pdf").exists()
