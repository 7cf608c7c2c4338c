"""The `BlobStore` conformance suite: what every blob store does, files and Cloud Storage alike.

To run it against a store, subclass `BlobStoreConformance` in that store's test module
and give the class a `blob_store` fixture: a fresh, empty store (its `url` of a key must name
the key). The class attributes `LARGE` and `PEAK` size the streaming test.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import pytest

from jobkit import ports

T = TypeVar("T")
MiB = 1 << 20


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def collect(store: ports.BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in await store.get(key)])


BAD_KEYS = [
    "",
    "/etc/passwd",
    "/",
    "a//b",
    "a/",
    "../outside",
    "a/../../outside",
    "a/..",
    "./a",
    "a/./b",
    "a\\b",
    "..\\outside",
    "a\0b",
    ".hidden",
    "a/.doc.meta.json",
    "with space",
    "colon:name",
    "C:/windows",
    "caf\u00e9",
    "~user",
    "a" * 201,
    "/".join(["abcdefghi"] * 103),  # 1029 characters
]


def refuse_bad_key(store: ports.BlobStore, key: str) -> None:
    """Every operation on `key` raises `ValueError` naming the key as invalid."""
    calls: list[Callable[[], Coroutine[Any, Any, object]]] = [
        lambda: store.put(key, stream(b"x"), "t"),
        lambda: store.put_bytes(key, b"x", "t"),
        lambda: store.get(key),
        lambda: store.read(key),
        lambda: store.stat(key),
        lambda: store.delete(key),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="invalid blob key"):
            run(call())
    with pytest.raises(ValueError, match="invalid blob key"):
        store.url(key)


class BlobStoreConformance:
    """What every `ports.BlobStore` does. Subclasses provide the `blob_store` fixture."""

    LARGE: ClassVar[int] = 64 * MiB
    PEAK: ClassVar[int] = 8 * MiB

    def test_put_get_read_stat_round_trip(self, blob_store: ports.BlobStore) -> None:
        async def main() -> None:
            key = "jobs/j1/input.pdf"
            assert await blob_store.put(key, stream(b"hello ", b"world"), "application/pdf") == 11
            assert await blob_store.read(key) == b"hello world"
            assert await collect(blob_store, key) == b"hello world"
            assert await blob_store.stat(key) == (11, "application/pdf")
            url = blob_store.url(key)  # where other services read it, or None (a local folder)
            assert url is None or key in url
            assert blob_store.url(key) == url

        run(main())

    def test_put_bytes_overwrites_data_and_content_type(self, blob_store: ports.BlobStore) -> None:
        async def main() -> None:
            await blob_store.put_bytes("r.json", b"{}", "application/json")
            await blob_store.put_bytes("r.json", b"plain", "text/plain")
            assert await blob_store.read("r.json") == b"plain"
            assert await blob_store.stat("r.json") == (5, "text/plain")

        run(main())

    def test_an_empty_blob(self, blob_store: ports.BlobStore) -> None:
        async def main() -> None:
            assert await blob_store.put("empty", stream(), "text/plain") == 0
            assert await blob_store.read("empty") == b""
            assert await collect(blob_store, "empty") == b""
            assert await blob_store.stat("empty") == (0, "text/plain")

        run(main())

    def test_a_large_blob_streams_through_in_bounded_memory(
        self, blob_store: ports.BlobStore
    ) -> None:
        size = self.LARGE
        written = hashlib.sha256()

        async def generate() -> AsyncIterator[bytes]:
            for i in range(size // (256 * 1024)):
                chunk = bytes([i % 251]) * (256 * 1024)
                written.update(chunk)
                yield chunk

        async def main() -> tuple[int, str]:
            n = await blob_store.put("big.bin", generate(), "application/octet-stream")
            read = hashlib.sha256()
            async for chunk in await blob_store.get("big.bin"):
                assert len(chunk) <= 4 * MiB
                read.update(chunk)
            assert (await blob_store.stat("big.bin"))[0] == n
            return n, read.hexdigest()

        tracemalloc.start()
        try:
            n, digest = run(main())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert n == size
        assert digest == written.hexdigest()
        assert peak < self.PEAK, f"peak {peak / MiB:.1f} MiB for a {size // MiB} MiB blob"

    def test_a_failed_put_stores_nothing(self, blob_store: ports.BlobStore) -> None:
        async def failing() -> AsyncIterator[bytes]:
            yield b"new content, part one"
            raise RuntimeError("upload broke")

        async def main() -> None:
            with pytest.raises(RuntimeError, match="upload broke"):
                await blob_store.put("k/doc", failing(), "application/pdf")
            with pytest.raises(ports.BlobNotFound):
                await blob_store.stat("k/doc")

        run(main())

    def test_a_blob_is_invisible_until_its_put_completes(self, blob_store: ports.BlobStore) -> None:
        async def main() -> None:
            halfway, resume = asyncio.Event(), asyncio.Event()

            async def slow() -> AsyncIterator[bytes]:
                yield b"first half; "
                halfway.set()
                await resume.wait()
                yield b"second half"

            put = asyncio.create_task(blob_store.put("doc", slow(), "text/plain"))
            await halfway.wait()
            await asyncio.sleep(0.01)
            with pytest.raises(ports.BlobNotFound):
                await blob_store.read("doc")
            resume.set()
            await put
            assert await blob_store.read("doc") == b"first half; second half"

        run(main())

    def test_a_cancelled_put_stores_nothing(self, blob_store: ports.BlobStore) -> None:
        async def main() -> None:
            started = asyncio.Event()

            async def endless() -> AsyncIterator[bytes]:
                while True:
                    yield b"more data" * 1000
                    started.set()
                    await asyncio.sleep(0)

            put = asyncio.create_task(blob_store.put("doc", endless(), "text/plain"))
            await started.wait()
            await asyncio.sleep(0.05)
            put.cancel()
            with pytest.raises(asyncio.CancelledError):
                await put
            with pytest.raises(ports.BlobNotFound):
                await blob_store.stat("doc")

        run(main())

    def test_max_bytes_allows_a_blob_of_exactly_the_limit(
        self, blob_store: ports.BlobStore
    ) -> None:
        assert run(blob_store.put("k", stream(b"12345", b"67890"), "t", max_bytes=10)) == 10

    def test_max_bytes_exceeded_stores_nothing_and_reads_no_further(
        self, blob_store: ports.BlobStore
    ) -> None:
        consumed: list[bytes] = []

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in (b"12345", b"67890", b"x", b"never read"):
                consumed.append(chunk)
                yield chunk

        async def main() -> None:
            with pytest.raises(ports.BlobTooLarge, match=r"'up/k'.* 10 bytes") as caught:
                await blob_store.put("up/k", chunks(), "t", max_bytes=10)
            assert isinstance(caught.value, ValueError)
            assert (caught.value.key, caught.value.max_bytes) == ("up/k", 10)
            with pytest.raises(ports.BlobNotFound):
                await blob_store.stat("up/k")

        run(main())
        assert consumed == [b"12345", b"67890", b"x"]

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_are_refused(self, blob_store: ports.BlobStore, key: str) -> None:
        refuse_bad_key(blob_store, key)

    def test_missing_blobs_raise_blob_not_found(self, blob_store: ports.BlobStore) -> None:
        run(blob_store.put_bytes("dir/inner", b"x", "t"))
        for key in ("missing", "dir"):
            for call in (blob_store.get, blob_store.read, blob_store.stat):
                with pytest.raises(ports.BlobNotFound, match=f"no blob at key '{key}'"):
                    run(call(key))

    def test_a_blob_deleted_between_get_and_iteration_is_not_found(
        self, blob_store: ports.BlobStore
    ) -> None:
        async def main() -> None:
            await blob_store.put_bytes("k", b"x", "t")
            chunks = await blob_store.get("k")
            await blob_store.delete("k")
            with pytest.raises(ports.BlobNotFound):
                await anext(chunks)

        run(main())

    def test_delete_is_idempotent(self, blob_store: ports.BlobStore) -> None:
        async def main() -> None:
            await blob_store.put_bytes("jobs/j1/in/doc", b"x", "t")
            await blob_store.put_bytes("jobs/j2/doc", b"y", "t")
            await blob_store.delete("jobs/j1/in/doc")
            await blob_store.delete("jobs/j1/in/doc")
            await blob_store.delete("never/existed")
            with pytest.raises(ports.BlobNotFound):
                await blob_store.stat("jobs/j1/in/doc")
            assert await blob_store.read("jobs/j2/doc") == b"y"

        run(main())

    def test_many_puts_at_once(self, blob_store: ports.BlobStore) -> None:
        async def main() -> list[bytes]:
            keys = [f"many/{n}" for n in range(20)]
            await asyncio.gather(
                *(blob_store.put(key, stream(key.encode(), b"!"), "t") for key in keys)
            )
            return [await blob_store.read(key) for key in keys]

        assert run(main()) == [f"many/{n}!".encode() for n in range(20)]

    # -- what refused writes leave, and listing ---------------------------------------

    async def _keys(self, store: ports.BlobStore, prefix: str = "") -> list[tuple[str, int]]:
        return sorted([(entry.key, entry.size) async for entry in store.scan(prefix)])

    def test_a_refused_or_failed_put_leaves_the_store_as_it_was(
        self, blob_store: ports.BlobStore
    ) -> None:
        async def failing() -> AsyncIterator[bytes]:
            yield b"part one"
            raise RuntimeError("upload broke")

        async def main() -> None:
            await blob_store.put_bytes("inputs/old/doc", b"kept", "t")
            before = await self._keys(blob_store)
            with pytest.raises(ports.BlobTooLarge):
                await blob_store.put("inputs/new/doc", stream(b"12345", b"678"), "t", max_bytes=5)
            assert await self._keys(blob_store) == before
            with pytest.raises(RuntimeError):
                await blob_store.put("inputs/new/doc", failing(), "t")
            assert await self._keys(blob_store) == before
            with pytest.raises(ports.BlobNotFound):
                await blob_store.stat("inputs/new/doc")

        run(main())

    def test_scan_lists_the_blobs_under_a_prefix_with_size_and_time(
        self, blob_store: ports.BlobStore
    ) -> None:
        async def main() -> list[ports.BlobEntry]:
            for key in ("inputs/a/doc", "inputs/a/x/doc", "inputs/b/doc", "results/a/r", "top"):
                await blob_store.put_bytes(key, key.encode(), "t")
            assert await self._keys(blob_store, "inputs/a") == [
                ("inputs/a/doc", 12),
                ("inputs/a/x/doc", 14),
            ]
            assert [key for key, _ in await self._keys(blob_store)] == [
                "inputs/a/doc",
                "inputs/a/x/doc",
                "inputs/b/doc",
                "results/a/r",
                "top",
            ]
            assert await self._keys(blob_store, "nothing/") == []
            return [entry async for entry in blob_store.scan("inputs/")]

        before = datetime.now(UTC)
        entries = run(main())
        assert sorted(e.key for e in entries) == ["inputs/a/doc", "inputs/a/x/doc", "inputs/b/doc"]
        for entry in entries:  # the stores' clocks and ours: a generous window
            assert (
                before - timedelta(minutes=5)
                <= entry.updated
                <= datetime.now(UTC) + timedelta(minutes=5)
            )
