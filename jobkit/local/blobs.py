"""A `ports.BlobStore` on the local disk: atomic streaming writes confined to one root directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from jobkit import ports
from jobkit.ports import BlobTooLarge

__all__ = ["DEFAULT_CONTENT_TYPE", "BlobTooLarge", "FileBlobStore", "check_key"]

T = TypeVar("T")

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_KEY_LENGTH = 1024
PARTIAL = ".partial"  # where writes in progress live (hidden: no key can name it)
_SCAN_BATCH = 1000
# No segment may start with a dot, so no key can name a temp file or a sidecar (both hidden);
# 200 characters leaves room for their affixes under the usual 255-byte file name limit.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def check_key(key: str) -> None:
    """Raise `ValueError` unless `key` is a safe relative blob key; pure, no I/O."""
    problem = _key_problem(key)
    if problem is not None:
        shown = key if len(key) <= 100 else key[:100] + "..."
        raise ValueError(f"invalid blob key {shown!r}: {problem}")


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"it is longer than {MAX_KEY_LENGTH} characters"
    if "\\" in key or "\0" in key:
        return "backslashes and NUL are not allowed"
    if key.startswith("/"):
        return "it must be relative, not absolute"
    for segment in key.split("/"):
        if not segment:
            return "it has an empty segment"
        if segment in {".", ".."}:
            return f"it has a {segment!r} segment"
        if not _SEGMENT.fullmatch(segment):
            return f"segment {segment!r} is not 1-200 of [A-Za-z0-9._-] starting with no '.'"
    return None


class FileBlobStore:
    """Blobs as files under `root`, each content type in a hidden `.<name>.meta.json` beside it.

    Writes go to a temp file in `root/.partial/` and are renamed into place, so a reader sees
    a whole old or a whole new blob, and the blob's directories are made only then: a write
    that fails or is refused leaves no trace, and one cut short by a crash leaves only a file
    in `.partial/`, which `discard_partial` removes. Blocking calls run in threads, a chunk at
    a time.
    """

    def __init__(self, root: Path, *, chunk_size: int = 1 << 20) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self._root = root.absolute()
        self._chunk_size = chunk_size

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Write atomically from a stream; the size in bytes, or `BlobTooLarge` past `max_bytes`."""
        check_key(key)
        file, temp = await _opened(lambda: self._open_temp(key), lambda o: _discard(*o))
        try:
            size = 0
            pending: list[bytes] = []
            pending_size = 0
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(key, max_bytes)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= self._chunk_size:
                    await asyncio.to_thread(file.writelines, pending)
                    pending, pending_size = [], 0
        except BaseException:
            # Synchronous, so it runs even while the task is being cancelled.
            _discard(file, temp)
            raise
        # Shielded: once begun, a commit finishes or cleans up after itself, even if cancelled.
        await asyncio.shield(
            asyncio.to_thread(self._commit, key, file, temp, pending, content_type)
        )
        return size

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        async def once() -> AsyncIterator[bytes]:
            yield data

        await self.put(key, once(), content_type)

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the blob; `BlobNotFound` on the await, before the first chunk, if missing."""
        check_key(key)
        path, _ = await asyncio.to_thread(self._find, key)
        return self._chunks(key, path)

    async def read(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in await self.get(key)])

    async def stat(self, key: str) -> tuple[int, str]:
        """(size, content type); `BlobNotFound` if missing."""
        check_key(key)
        return await asyncio.to_thread(self._stat, key)

    async def delete(self, key: str) -> None:
        """Idempotent; also removes directories the deletion left empty, up to the root."""
        check_key(key)
        await asyncio.to_thread(self._delete, key)

    def url(self, key: str) -> str | None:
        """None: the folder is this machine's own, no other service reads a blob from it."""
        check_key(key)
        return None

    # -- blocking parts, run in threads -----------------------------------------------

    def _resolve(self, key: str) -> tuple[Path, Path]:
        """The resolved root and key path; `ValueError` if a symlink leads out of the root."""
        root = self._root.resolve()
        try:
            path = (root / key).resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise ValueError(f"invalid blob key {key!r}: {e}") from e
        if path == root or not path.is_relative_to(root):
            raise ValueError(f"invalid blob key {key!r}: a symlink leads it out of {root}")
        return root, path

    def _find(self, key: str) -> tuple[Path, int]:
        _, path = self._resolve(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            info = path.stat()
            if stat.S_ISREG(info.st_mode):
                return path, info.st_size
        raise _not_found(key)

    def _stat(self, key: str) -> tuple[int, str]:
        path, size = self._find(key)
        try:
            meta = json.loads(_meta_path(path).read_bytes())
        except FileNotFoundError:
            return size, DEFAULT_CONTENT_TYPE
        return size, str(meta["content_type"])

    def _open_temp(self, key: str) -> tuple[BinaryIO, Path]:
        root, target = self._resolve(key)
        if target.is_dir():
            raise _conflict(key)
        return _temp_in(root / PARTIAL, target.name)

    def _commit(
        self, key: str, file: BinaryIO, temp: Path, tail: list[bytes], content_type: str
    ) -> None:
        """Finish `temp`, make the blob's directories and rename it (after its sidecar) into
        place; on any failure, remove what was not renamed."""
        try:
            root, target = self._resolve(key)
            if target.is_dir():
                raise _conflict(key)
            meta = _meta_path(target)
            sidecar = _temp_in(root / PARTIAL, meta.name)
            _finish(*sidecar, [json.dumps({"content_type": content_type}).encode()])
        except BaseException:
            _discard(file, temp)
            raise
        try:
            _finish(file, temp, tail)
            # The sidecar goes first, so a blob's data never appears without its content type;
            # once it is in place its directory is not empty, so no delete prunes it.
            for attempt in range(3):
                try:
                    _make_dirs(root, target.parent)
                    os.replace(sidecar[1], meta)
                    break
                except NotADirectoryError:
                    raise _conflict(key) from None
                except FileNotFoundError:  # a concurrent delete pruned the new directory
                    if attempt == 2:
                        raise
            os.replace(temp, target)
            with contextlib.suppress(OSError):  # the workspace exists only while in use
                temp.parent.rmdir()
        except BaseException:
            for leftover in (sidecar[1], temp):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            with contextlib.suppress(OSError):
                temp.parent.rmdir()
            raise
        _fsync_dir(target.parent)

    async def scan(self, prefix: str) -> AsyncIterator[ports.BlobEntry]:
        """Every blob whose key starts with `prefix`, with its size and last write time, in
        no set order; writes not yet committed are not blobs."""
        start = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if start:
            check_key(start)
        walker = os.walk(self._root / start) if start else os.walk(self._root)
        while True:
            batch = await asyncio.to_thread(_entries, self._root, walker, prefix, _SCAN_BATCH)
            if batch is None:
                return
            for entry in batch:
                yield entry

    async def discard_partial(self, older_than: datetime) -> int:
        """Remove what writes that never finished (a crashed process's) left, last written
        before `older_than`: temp files, and content-type sidecars without their blob; how
        many files were removed."""
        return await asyncio.to_thread(self._discard_partial, older_than.timestamp())

    def _discard_partial(self, before: float) -> int:
        removed = 0
        # Temp files in `.partial/`, and beside the blobs, where versions before it wrote
        # them; a sidecar whose data never arrived (a crash between the two renames of a
        # commit, or the two unlinks of a delete); and a folder a crashed commit made but
        # never filled. Bottom up, so a folder emptied here goes too.
        root = self._root.resolve()
        # A folder's time before this sweep removed anything from it (a removal sets it).
        touched: dict[Path, float] = {}
        for directory, _subdirectories, names in os.walk(root, topdown=False):
            folder = Path(directory)
            if folder != root and not names:
                with contextlib.suppress(OSError):
                    stamp = touched.get(folder) or folder.stat().st_mtime
                    if stamp < before:
                        touched.setdefault(folder.parent, folder.parent.stat().st_mtime)
                        folder.rmdir()  # fails unless empty
                continue
            for name in names:
                path = Path(directory) / name
                if not name.startswith("."):
                    continue
                if name.endswith(".meta.json"):
                    if (path.parent / name[1 : -len(".meta.json")]).exists():
                        continue
                elif not name.endswith(".tmp"):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < before:
                        path.unlink()
                        removed += 1
                        self._prune(path.parent)
        return removed

    def _delete(self, key: str) -> None:
        _root, path = self._resolve(key)
        if path.is_dir():  # a prefix of other keys, not a blob
            return
        # Data first: put writes the sidecar first, so data never lacks its sidecar.
        for victim in (path, _meta_path(path)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                victim.unlink()
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove `directory` and its parents while they are empty, up to the root."""
        root = self._root.resolve()
        while directory != root and directory.is_relative_to(root):
            try:
                directory.rmdir()
            except OSError:  # not empty (or not ours to prune)
                break
            directory = directory.parent
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            _fsync_dir(directory)

    async def _chunks(self, key: str, path: Path) -> AsyncIterator[bytes]:
        try:
            file = await _opened(lambda: path.open("rb"), lambda f: f.close())
        except (FileNotFoundError, NotADirectoryError):  # deleted since `get`
            raise _not_found(key) from None
        try:
            while chunk := await asyncio.to_thread(file.read, self._chunk_size):
                yield chunk
        finally:
            file.close()


async def _opened(open_: Callable[[], T], close: Callable[[T], object]) -> T:
    """`open_()` in a thread; if the caller is cancelled meanwhile, `close` what it opens."""
    task = asyncio.ensure_future(asyncio.to_thread(open_))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda t: t.cancelled() or t.exception() or close(t.result()))
        raise


def _temp_in(partial: Path, name: str) -> tuple[BinaryIO, Path]:
    """A new temp file in the workspace `partial`, made (again) if need be."""
    for attempt in range(3):
        partial.mkdir(parents=True, exist_ok=True)
        try:
            fd, temp = tempfile.mkstemp(dir=partial, prefix=f".{name[:100]}.", suffix=".tmp")
        except FileNotFoundError:  # another write, finishing, removed the empty workspace
            if attempt == 2:
                raise
        else:
            return os.fdopen(fd, "wb"), Path(temp)
    raise AssertionError("unreachable")


def _finish(file: BinaryIO, temp: Path, tail: list[bytes]) -> None:
    """Write `tail` to `temp` and sync it; on failure, remove it."""
    try:
        with file:
            file.writelines(tail)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        _discard(file, temp)
        raise


def _conflict(key: str) -> ValueError:
    return ValueError(f"blob key {key!r} conflicts with a blob or a key prefix")


def _entries(
    root: Path, walker: Iterator[tuple[str, list[str], list[str]]], prefix: str, count: int
) -> list[ports.BlobEntry] | None:
    """Up to `count` more blobs from `walker` whose keys start with `prefix`; None when done."""
    found: list[ports.BlobEntry] = []
    for directory, subdirectories, names in walker:
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        base = Path(directory)
        for name in names:
            if name.startswith("."):  # sidecars and temp files
                continue
            path = base / name
            key = path.relative_to(root).as_posix()
            if not key.startswith(prefix):
                continue
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                if stat.S_ISREG(info.st_mode):
                    updated = datetime.fromtimestamp(info.st_mtime, UTC)
                    found.append(ports.BlobEntry(key=key, size=info.st_size, updated=updated))
        if len(found) >= count:
            return found
    return found or None


def _discard(file: BinaryIO, temp: Path) -> None:
    """Close and remove a temp file; and its workspace if that is now empty, so a write that
    failed leaves the store exactly as it found it."""
    file.close()
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    with contextlib.suppress(OSError):
        temp.parent.rmdir()


def _make_dirs(root: Path, directory: Path) -> None:
    """Create `directory` below `root`, syncing each new entry's parent so it survives a crash."""
    root.mkdir(parents=True, exist_ok=True)
    current = root
    for part in directory.relative_to(root).parts:
        current /= part
        with contextlib.suppress(FileExistsError):
            current.mkdir()
            _fsync_dir(current.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.meta.json")


def _not_found(key: str) -> ports.BlobNotFound:
    return ports.BlobNotFound(f"no blob at key {key!r}")
