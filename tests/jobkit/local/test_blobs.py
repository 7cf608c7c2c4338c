from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobkit import ports
from jobkit.local import blobs
from tests.jobkit.blob_conformance import (
    BAD_KEYS,
    BlobStoreConformance,
    refuse_bad_key,
    run,
    stream,
)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def blob_store(tmp_path: Path) -> blobs.FileBlobStore:
    return blobs.FileBlobStore(tmp_path / "blobs")


class TestFileBlobStore(BlobStoreConformance):
    pass


def test_it_is_a_blob_store(tmp_path: Path) -> None:
    store: ports.BlobStore = blobs.FileBlobStore(tmp_path)
    assert store.url("a") is None


# -- round trips ------------------------------------------------------------------


def test_put_get_read_stat_round_trip(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path / "root", chunk_size=4)

    async def main() -> None:
        size = await store.put("jobs/j1/input.pdf", stream(b"hello ", b"world"), "application/pdf")
        assert size == 11
        assert await store.read("jobs/j1/input.pdf") == b"hello world"
        assert [c async for c in await store.get("jobs/j1/input.pdf")] == [
            b"hell",
            b"o wo",
            b"rld",
        ]
        assert await store.stat("jobs/j1/input.pdf") == (11, "application/pdf")

    run(main())
    assert (tmp_path / "root/jobs/j1/input.pdf").read_bytes() == b"hello world"


def test_stat_defaults_the_content_type_when_the_sidecar_is_gone(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path)
    run(store.put_bytes("a/b", b"xyz", "text/plain"))
    (sidecar,) = [p for p in (tmp_path / "a").iterdir() if p.name != "b"]
    sidecar.unlink()
    assert run(store.stat("a/b")) == (3, blobs.DEFAULT_CONTENT_TYPE)


def test_a_folder_gives_no_location_other_services_could_read(tmp_path: Path) -> None:
    assert blobs.FileBlobStore(tmp_path).url("jobs/j1/result.json") is None


# -- atomicity --------------------------------------------------------------------


def test_a_failed_put_keeps_the_old_blob_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path, chunk_size=4)

    async def failing() -> AsyncIterator[bytes]:
        yield b"new content, part one"
        raise RuntimeError("upload broke")

    async def main() -> None:
        await store.put_bytes("k/doc", b"old", "text/plain")
        with pytest.raises(RuntimeError, match="upload broke"):
            await store.put("k/doc", failing(), "application/pdf")
        assert await store.read("k/doc") == b"old"
        assert await store.stat("k/doc") == (3, "text/plain")

    run(main())
    assert temp_files(tmp_path) == []


def test_a_reader_sees_the_old_blob_until_the_put_commits(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path, chunk_size=4)

    async def main() -> None:
        await store.put_bytes("doc", b"old", "text/plain")
        halfway, resume = asyncio.Event(), asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:
            yield b"new, first half; "
            halfway.set()
            await resume.wait()
            yield b"second half"

        put = asyncio.create_task(store.put("doc", slow(), "text/plain"))
        await halfway.wait()
        await asyncio.sleep(0.01)
        assert await store.read("doc") == b"old"
        resume.set()
        await put
        assert await store.read("doc") == b"new, first half; second half"

    run(main())
    assert temp_files(tmp_path) == []


def test_a_cancelled_put_keeps_the_old_blob_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path, chunk_size=4)

    async def main() -> None:
        await store.put_bytes("doc", b"old", "text/plain")
        started = asyncio.Event()

        async def endless() -> AsyncIterator[bytes]:
            while True:
                yield b"more data"
                started.set()
                await asyncio.sleep(0)

        put = asyncio.create_task(store.put("doc", endless(), "text/plain"))
        await started.wait()
        await asyncio.sleep(0.01)
        put.cancel()
        with pytest.raises(asyncio.CancelledError):
            await put
        assert await store.read("doc") == b"old"

    run(main())
    assert temp_files(tmp_path) == []


def test_concurrent_puts_of_one_key_end_with_one_whole_version(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path, chunk_size=64)
    versions = [bytes([65 + i]) * 1000 for i in range(10)]

    async def main() -> bytes:
        await asyncio.gather(
            *(
                store.put("shared/doc", stream(*[v[j : j + 100] for j in range(0, 1000, 100)]), "t")
                for v in versions
            )
        )
        return await store.read("shared/doc")

    assert run(main()) in versions
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == [".doc.meta.json", "doc"]


# -- max_bytes --------------------------------------------------------------------


def test_max_bytes_exceeded_leaves_no_temp_file(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path, chunk_size=4)
    with pytest.raises(blobs.BlobTooLarge):
        run(store.put("up/k", stream(b"12345", b"67890", b"x"), "t", max_bytes=10))
    assert temp_files(tmp_path) == []
    assert not (tmp_path / "up/k").exists()


def test_max_bytes_exceeded_keeps_the_old_blob(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path)

    async def main() -> bytes:
        await store.put_bytes("k", b"old", "t")
        with pytest.raises(blobs.BlobTooLarge):
            await store.put("k", stream(b"far too long"), "t", max_bytes=3)
        return await store.read("k")

    assert run(main()) == b"old"


# -- keys -------------------------------------------------------------------------


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_before_any_io(tmp_path: Path, key: str) -> None:
    """Refused before touching the disk: not even the root is made."""
    root = tmp_path / "root"
    refuse_bad_key(blobs.FileBlobStore(root), key)
    assert not root.exists()


def test_the_longest_good_key_is_accepted(tmp_path: Path) -> None:
    key = "/".join(["a" * 200] * 5)[:1024].rstrip("/")
    store = blobs.FileBlobStore(tmp_path)
    run(store.put_bytes(key, b"x", "t"))
    assert run(store.read(key)) == b"x"


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (root / "escape").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "secret")
    (root / "dangling").symlink_to(outside / "not-yet")
    store = blobs.FileBlobStore(root)

    async def main() -> None:
        for key in ("escape/secret", "escape/new", "file-link", "dangling"):
            with pytest.raises(ValueError, match=f"invalid blob key '{key}'.*symlink"):
                await store.read(key)
            with pytest.raises(ValueError, match="symlink"):
                await store.put_bytes(key, b"pwned", "t")
            with pytest.raises(ValueError, match="symlink"):
                await store.delete(key)

    run(main())
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"


def test_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    store = blobs.FileBlobStore(tmp_path)
    with pytest.raises(ValueError, match="invalid blob key 'loop/x'"):
        run(store.read("loop/x"))


def test_a_symlink_that_stays_inside_the_root_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    store = blobs.FileBlobStore(tmp_path)
    run(store.put_bytes("alias/doc", b"x", "t"))
    assert run(store.read("real/doc")) == b"x"


def test_a_key_cannot_be_both_a_blob_and_a_prefix(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path)

    async def main() -> None:
        await store.put_bytes("a", b"x", "t")
        await store.put_bytes("p/q", b"y", "t")
        with pytest.raises(ValueError, match="'a/b' conflicts"):
            await store.put_bytes("a/b", b"z", "t")
        with pytest.raises(ValueError, match="'p' conflicts"):
            await store.put_bytes("p", b"z", "t")
        assert await store.read("a") == b"x"
        assert await store.read("p/q") == b"y"

    run(main())


# -- missing blobs and delete -----------------------------------------------------


@pytest.mark.parametrize("key", ["missing", "dir", "file/below"])
def test_missing_blobs_raise_blob_not_found(tmp_path: Path, key: str) -> None:
    store = blobs.FileBlobStore(tmp_path)
    run(store.put_bytes("dir/inner", b"x", "t"))
    run(store.put_bytes("file", b"x", "t"))
    for call in (store.get, store.read, store.stat):
        with pytest.raises(ports.BlobNotFound, match=f"no blob at key '{key}'"):
            run(call(key))


def test_get_raises_on_the_await_before_streaming(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path / "never-created")

    async def main() -> None:
        with pytest.raises(ports.BlobNotFound):
            await store.get("k")

    run(main())


def test_delete_is_idempotent_and_prunes_empty_directories(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = blobs.FileBlobStore(root)

    async def main() -> None:
        await store.put_bytes("jobs/j1/in/doc", b"x", "t")
        await store.put_bytes("jobs/j2/doc", b"y", "t")
        await store.delete("jobs/j1/in/doc")
        await store.delete("jobs/j1/in/doc")
        await store.delete("never/existed")
        await store.delete("jobs")  # a prefix, not a blob
        with pytest.raises(ports.BlobNotFound):
            await store.stat("jobs/j1/in/doc")
        assert await store.read("jobs/j2/doc") == b"y"
        await store.delete("jobs/j2/doc")

    run(main())
    assert root.is_dir()
    assert list(root.iterdir()) == []


def test_a_put_after_delete_recreates_directories(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path)

    async def main() -> None:
        for i in range(20):
            await asyncio.gather(
                store.put_bytes(f"d/e/{i}", b"x", "t"), store.delete(f"d/e/{i - 1}")
            )
        assert await store.read("d/e/19") == b"x"

    run(main())
    assert sorted(os.listdir(tmp_path / "d/e")) == [".19.meta.json", "19"]


def test_chunk_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        blobs.FileBlobStore(tmp_path, chunk_size=0)


# -- nothing left behind, and housekeeping ------------------------------------------------


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (with its content) and directory under `root`, hidden ones included."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in root.rglob("*")
    }


def test_a_refused_or_failed_put_leaves_the_store_exactly_as_it_was(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path, chunk_size=4)

    async def failing() -> AsyncIterator[bytes]:
        yield b"part one"
        raise RuntimeError("upload broke")

    async def main() -> None:
        await store.put_bytes("inputs/old/doc", b"kept", "t")
        before = tree(tmp_path)
        with pytest.raises(blobs.BlobTooLarge):
            await store.put("inputs/new/doc", stream(b"12345", b"678"), "t", max_bytes=5)
        assert tree(tmp_path) == before
        with pytest.raises(RuntimeError):
            await store.put("inputs/new/doc", failing(), "t")
        assert tree(tmp_path) == before

    run(main())


def test_a_refused_first_put_leaves_an_empty_root_empty(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path)
    with pytest.raises(blobs.BlobTooLarge):
        run(store.put("inputs/j/doc", stream(b"123456"), "t", max_bytes=5))
    assert tree(tmp_path) == {}


def scanned(store: blobs.FileBlobStore, prefix: str) -> list[ports.BlobEntry]:
    async def main() -> list[ports.BlobEntry]:
        return sorted([entry async for entry in store.scan(prefix)], key=lambda e: e.key)

    entries: list[ports.BlobEntry] = run(main())
    return entries


def test_scan_goes_in_batches_without_listing_everything_first(tmp_path: Path) -> None:
    store = blobs.FileBlobStore(tmp_path)
    count = 2 * blobs._SCAN_BATCH + 7

    async def main() -> int:
        await asyncio.gather(*(store.put_bytes(f"many/{n}", b"", "t") for n in range(count)))
        return len({entry.key async for entry in store.scan("many/")})

    assert run(main()) == count


def test_a_write_cut_short_by_a_crash_leaves_only_a_partial_file_until_discarded(
    tmp_path: Path,
) -> None:
    # What a process killed in the middle of `put` leaves: its temp file, and no blob folder.
    store = blobs.FileBlobStore(tmp_path)
    file, temp = store._open_temp("inputs/j1/doc")
    file.write(b"half an upload")
    file.close()
    old = datetime.now(UTC).timestamp() - 3600
    os.utime(temp, (old, old))
    assert not (tmp_path / "inputs").exists()
    # An old-style temp file beside a blob (versions before `.partial`) is discarded too.
    run(store.put_bytes("inputs/j2/doc", b"whole", "t"))
    legacy = tmp_path / "inputs/j2/.doc.abc123.tmp"
    legacy.write_bytes(b"half")
    os.utime(legacy, (old, old))
    fresh = store._open_temp("inputs/j3/doc")
    fresh[0].close()
    # A commit cut between its two renames: the content type arrived, the data did not.
    run(store.put_bytes("inputs/j4/doc", b"whole", "t"))
    (tmp_path / "inputs/j4/doc").unlink()
    lone = tmp_path / "inputs/j4/.doc.meta.json"
    os.utime(lone, (old, old))

    # A commit cut after it made the blob's folders, before it moved anything into them.
    (tmp_path / "inputs/j5/nested").mkdir(parents=True)
    for folder in (tmp_path / "inputs/j5/nested", tmp_path / "inputs/j5"):
        os.utime(folder, (old, old))
    (tmp_path / "inputs/j6").mkdir()  # made just now: a commit may be under way

    removed = run(store.discard_partial(datetime.now(UTC) - timedelta(minutes=10)))

    assert not (tmp_path / "inputs/j5").exists()
    assert (tmp_path / "inputs/j6").exists()
    assert removed == 3
    assert not (tmp_path / "inputs/j4").exists()
    assert (tmp_path / "inputs/j2/.doc.meta.json").exists()  # its blob is there
    assert not temp.exists()
    assert not legacy.exists()
    assert fresh[1].exists()  # a write still under way is left alone
    assert run(store.read("inputs/j2/doc")) == b"whole"
