"""The Cloud Storage `BlobStore`: objects in one bucket, under an optional prefix.

google-cloud-storage is synchronous: every call runs on the store's own thread
pool, never on the event loop, and large objects move a chunk at a time.

- `put` streams a resumable upload: chunks are gathered into requests of
  `upload_chunk_size` bytes and sent as they fill, so memory holds about one
  request whatever the file's size. The object appears only when the last
  request lands; a failed, cancelled or too-large upload cancels its session
  and leaves nothing behind. A stream shorter than one request goes in one
  request. Either way the upload carries `if_generation_match=0`: it creates,
  never overwrites, so a retried request cannot replace what an earlier one
  stored, and the client may retry it safely. A key that holds an object
  already is refused (`ValueError`): upload keys are new by construction.
- `put_bytes` (results) writes in one request and may overwrite: a repeat of
  the same attempt writes the same key (see `effects.WriteBlob`).
- `get` reads the object's metadata first (so a missing blob raises before the
  first chunk), then ranges of `read_chunk_size` bytes of that very generation:
  an object replaced meanwhile ends the stream with `BlobNotFound` rather
  than mixing two versions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from google.api_core import exceptions
from google.cloud import storage
from google.cloud.storage import fileio
from google.cloud.storage.retry import DEFAULT_RETRY

from jobkit import ports
from jobkit.local.blobs import DEFAULT_CONTENT_TYPE, check_key
from jobkit.ports import BlobNotFound, BlobTooLarge

T = TypeVar("T")

UPLOAD_CHUNK: Final = 8 << 20  # a multiple of 256 KiB, as resumable uploads require
READ_CHUNK: Final = 2 << 20
SCAN_PAGE = 1000  # names per listing request of the orphan sweep
_GATHER: Final = 1 << 20  # bytes gathered before a hop to a thread


class GcsBlobStore:
    """`ports.BlobStore` on bucket `bucket` of `client`, every key under `prefix`.

    The store owns `client` and closes it on `close()`; use it as `async with`.
    """

    def __init__(
        self,
        client: storage.Client,
        bucket: str,
        *,
        prefix: str = "",
        upload_chunk_size: int = UPLOAD_CHUNK,
        read_chunk_size: int = READ_CHUNK,
        threads: int = 16,
    ) -> None:
        if upload_chunk_size <= 0 or upload_chunk_size % (256 << 10):
            raise ValueError("upload_chunk_size must be a positive multiple of 256 KiB")
        if read_chunk_size <= 0:
            raise ValueError("read_chunk_size must be positive")
        self.client = client
        self.bucket_name = bucket
        self.prefix = normalize_prefix(prefix)
        self._bucket = client.bucket(bucket)
        self._upload_chunk = upload_chunk_size
        self._read_chunk = read_chunk_size
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="jobkit-gcs")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown)
        await asyncio.to_thread(self.client.close)

    async def ready(self, timeout: float = 5.0) -> None:
        """Raise unless the bucket answers a listing of at most one name under the prefix,
        at once: no retries, for a readiness probe."""

        def probe() -> None:
            names = self.client.list_blobs(
                self._bucket, prefix=self.prefix, max_results=1, timeout=timeout, retry=None
            )
            list(names)

        await self._call(probe)

    def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))

    def run(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run a blocking call of the client on the store's threads (signing URLs)."""
        return self._call(function, *args)

    def blob(self, key: str) -> storage.Blob:
        """The object `key` names (under the prefix), for calls the port does not make."""
        return self._blob(key)

    def _blob(self, key: str) -> storage.Blob:
        check_key(key)
        return self._bucket.blob(self.prefix + key)

    def url(self, key: str) -> str:
        check_key(key)
        return f"gs://{self.bucket_name}/{self.prefix}{key}"

    # -- writing --------------------------------------------------------------------

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Create the object from a stream; its size. Past `max_bytes`: `BlobTooLarge`, and
        nothing stored. A key that holds an object: `ValueError`, nothing changed.

        A stream shorter than one upload request goes in one request; a longer one opens a
        resumable upload and sends each request as it fills.
        """
        blob = self._blob(key)
        writer: fileio.BlobWriter | None = None
        finishing = False
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(key, max_bytes)
                pending.append(chunk)
                pending_size += len(chunk)
                if writer is None and pending_size >= self._upload_chunk:
                    writer = fileio.BlobWriter(
                        blob,
                        chunk_size=self._upload_chunk,
                        content_type=content_type,
                        if_generation_match=0,
                        retry=DEFAULT_RETRY,
                    )
                if writer is not None and pending_size >= _GATHER:
                    data, pending, pending_size = b"".join(pending), [], 0
                    await self._call(writer.write, data)
            data, pending = b"".join(pending), []
            if writer is None:
                finish = self._call(
                    blob.upload_from_string,
                    data,
                    content_type=content_type,
                    if_generation_match=0,
                    retry=DEFAULT_RETRY,
                )
            else:
                finish = self._call(_finish, writer, data)
            finishing = True
            # Shielded: once the last request is on its way, it lands or fails whole.
            await asyncio.shield(finish)
        except exceptions.PreconditionFailed:
            raise ValueError(f"blob key {key!r} holds a blob already") from None
        except BaseException:
            if writer is not None and not finishing:
                self._pool.submit(_cancel, writer)  # even while this task is being cancelled
            raise
        return size

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        blob = self._blob(key)
        await self._call(
            blob.upload_from_string, data, content_type=content_type, retry=DEFAULT_RETRY
        )

    # -- reading --------------------------------------------------------------------

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the blob; `BlobNotFound` on the await, before the first chunk, if missing."""
        blob = self._blob(key)
        try:
            await self._call(blob.reload)
        except exceptions.NotFound:
            raise _not_found(key) from None
        pinned = self._bucket.blob(blob.name, generation=blob.generation)
        return self._chunks(key, pinned, blob.size or 0)

    async def _chunks(self, key: str, blob: storage.Blob, size: int) -> AsyncIterator[bytes]:
        start = 0
        while start < size:
            end = min(start + self._read_chunk, size) - 1  # inclusive
            try:
                chunk: bytes = await self._call(
                    blob.download_as_bytes,
                    start=start,
                    end=end,
                    checksum=None,
                )
            except exceptions.NotFound:  # deleted, or replaced: that generation is gone
                raise _not_found(key) from None
            yield chunk
            start = end + 1

    async def read(self, key: str) -> bytes:
        blob = self._blob(key)
        try:
            data: bytes = await self._call(blob.download_as_bytes)
        except exceptions.NotFound:
            raise _not_found(key) from None
        return data

    async def stat(self, key: str) -> tuple[int, str]:
        blob = self._blob(key)
        try:
            await self._call(blob.reload)
        except exceptions.NotFound:
            raise _not_found(key) from None
        return blob.size or 0, blob.content_type or DEFAULT_CONTENT_TYPE

    async def delete(self, key: str) -> None:
        """Idempotent: a missing object (or one a retried request deleted) is a success."""
        blob = self._blob(key)
        with contextlib.suppress(exceptions.NotFound):
            await self._call(blob.delete, retry=DEFAULT_RETRY)

    # -- housekeeping -------------------------------------------------------------------

    async def scan(self, prefix: str) -> AsyncIterator[ports.BlobEntry]:
        """Every object under `prefix` (below the store's own prefix), a page of up to
        `SCAN_PAGE` names at a time, each page fetched off the event loop."""
        pages = iter(
            self.client.list_blobs(
                self._bucket, prefix=self.prefix + prefix, page_size=SCAN_PAGE, retry=DEFAULT_RETRY
            ).pages
        )
        while True:
            page = await self._call(next, pages, None)
            if page is None:
                return
            for blob in list(page):
                key = blob.name[len(self.prefix) :]
                updated = blob.updated or blob.time_created
                if updated is None:  # never, for a listed object; a listing is no place to die
                    continue
                yield ports.BlobEntry(key=key, size=blob.size or 0, updated=updated)

    async def discard_partial(self, older_than: datetime) -> int:
        """0: an upload becomes an object only once it completes (a resumable session never
        finished leaves nothing to see, and expires by itself within a week)."""
        return 0


def normalize_prefix(prefix: str) -> str:
    """`""`, or the prefix's segments (checked as a blob key's are) and a trailing `/`."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    check_key(stripped)
    return stripped + "/"


def _finish(writer: fileio.BlobWriter, data: bytes) -> None:
    writer.write(data)
    writer.close()


def _cancel(writer: fileio.BlobWriter) -> None:
    """Abandon an upload: cancel its session (if it began), so no object is ever made."""
    try:
        writer.terminate()
    except Exception:  # best effort: an unfinished session expires by itself in a week
        return


def _not_found(key: str) -> ports.BlobNotFound:
    return BlobNotFound(f"no blob at key {key!r}")
