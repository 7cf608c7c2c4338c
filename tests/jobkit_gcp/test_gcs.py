"""The Cloud Storage blob store on fake-gcs-server: the blob store suite, then its own ways."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from google.cloud import storage

from jobkit import ports
from jobkit_gcp.gcs import GcsBlobStore, normalize_prefix
from tests.jobkit.blob_conformance import BlobStoreConformance, MiB, run, stream
from tests.jobkit_gcp.conftest import Emulators, unique


def new_bucket() -> str:
    name = unique("bucket")
    storage.Client().create_bucket(name)
    return name


def store_on(bucket: str, **options: object) -> GcsBlobStore:
    return GcsBlobStore(storage.Client(), bucket, **options)  # type: ignore[arg-type]


@pytest.fixture
def blob_store(emulators: Emulators) -> Iterator[GcsBlobStore]:
    # Small requests, so that the suite's streams exercise resumable uploads and ranges.
    store = store_on(
        new_bucket(), prefix="jobkit", upload_chunk_size=256 << 10, read_chunk_size=MiB
    )
    yield store
    run(store.close())


class TestGcsBlobStore(BlobStoreConformance):
    LARGE = 32 * MiB
    PEAK = 8 * MiB


def names(bucket: str) -> list[str]:
    return sorted(blob.name for blob in storage.Client().list_blobs(bucket))


def test_objects_live_under_the_prefix_and_urls_say_where(emulators: Emulators) -> None:
    bucket = new_bucket()

    async def main() -> None:
        async with store_on(bucket, prefix="/team/jobkit/") as store:
            await store.put("inputs/j1/document.pdf", stream(b"%PDF"), "application/pdf")
            await store.put_bytes("results/j1/attempt-1.json", b"{}", "application/json")
            assert store.url("inputs/j1/document.pdf") == (
                f"gs://{bucket}/team/jobkit/inputs/j1/document.pdf"
            )

    run(main())
    assert names(bucket) == [
        "team/jobkit/inputs/j1/document.pdf",
        "team/jobkit/results/j1/attempt-1.json",
    ]


@pytest.mark.parametrize(
    ("prefix", "normal"), [("", ""), ("/", ""), ("a", "a/"), ("/a/b/", "a/b/"), ("a/b", "a/b/")]
)
def test_prefixes_are_normalized(prefix: str, normal: str) -> None:
    assert normalize_prefix(prefix) == normal


@pytest.mark.parametrize("prefix", ["a//b", "../up", "with space", ".hidden"])
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        normalize_prefix(prefix)


def test_an_upload_never_replaces_an_object(emulators: Emulators) -> None:
    """`if_generation_match=0`: an upload creates or fails; what is there stays."""

    async def main() -> None:
        async with store_on(new_bucket()) as store:
            await store.put("inputs/j1/document.pdf", stream(b"first"), "application/pdf")
            with pytest.raises(ValueError, match="holds a blob already"):
                await store.put("inputs/j1/document.pdf", stream(b"second"), "application/pdf")
            assert await store.read("inputs/j1/document.pdf") == b"first"

    run(main())


def test_a_large_upload_past_its_limit_leaves_no_object_and_no_session(
    emulators: Emulators,
) -> None:
    bucket = new_bucket()

    async def big() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield b"x" * (256 << 10)

    async def main() -> None:
        async with store_on(bucket, upload_chunk_size=256 << 10) as store:
            with pytest.raises(ports.BlobTooLarge):
                await store.put("big", big(), "application/pdf", max_bytes=3 * MiB)
            await asyncio.sleep(0.2)  # the session's cancellation runs on the store's threads

    run(main())
    assert names(bucket) == []


def test_a_stream_of_an_object_replaced_meanwhile_ends_not_found(emulators: Emulators) -> None:
    """Reads are pinned to the generation `get` found: never half of one and half of another."""

    async def main() -> None:
        async with store_on(new_bucket(), read_chunk_size=4) as store:
            await store.put_bytes("r.json", b"version one", "application/json")
            chunks = await store.get("r.json")
            assert await anext(chunks) == b"vers"
            await store.put_bytes("r.json", b"version two", "application/json")
            with pytest.raises(ports.BlobNotFound):
                await anext(chunks)

    run(main())


def test_ready_needs_the_bucket(emulators: Emulators) -> None:
    from google.api_core import exceptions

    async def main() -> None:
        async with store_on(new_bucket()) as store:
            await store.ready()
        async with store_on(unique("missing")) as store:
            with pytest.raises(exceptions.NotFound):
                await store.ready()

    run(main())


def test_chunk_sizes_are_checked() -> None:
    client = storage.Client.create_anonymous_client()
    with pytest.raises(ValueError, match="256 KiB"):
        GcsBlobStore(client, "b", upload_chunk_size=1000)
    with pytest.raises(ValueError, match="read_chunk_size"):
        GcsBlobStore(client, "b", read_chunk_size=0)
