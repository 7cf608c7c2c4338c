"""The embedded runtime: a SQLite job store, a folder of blobs and workers, for Python apps."""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
from returns.result import Failure, Result, Success

from jobkit import effects, errors, events, jobs, pipeline, plugins, ports, registry, submission
from jobkit.local.blobs import FileBlobStore
from jobkit.local.doorbell import InProcessDoorbell, SocketDoorbell
from jobkit.local.feed import StoreChangeFeed
from jobkit.local.sqlite import SqliteJobStore, Synchronous
from jobkit.local.sqlite_versions import SqliteVersions
from jobkit.worker import commands
from jobkit.worker.blobs import blob_performers
from jobkit.worker.interpreter import Performers
from jobkit.worker.observed import CallObserver, ObservedBlobs, ObservedStore
from jobkit.worker.worker import Attempt, Clock, Worker, WorkerConfig, utc_now

CHUNK = 1 << 20
_NO_JOB = "00000000-0000-0000-0000-000000000000"


def _inside(folder: Path | None) -> Path:
    assert folder is not None  # checked in Runtime.__init__
    return folder


class NoAnalyzer:
    """The default when none is given: `Analyze` fails permanently, saying why."""

    async def analyze(
        self, effect: effects.Analyze, progress: ports.Progress
    ) -> Result[effects.Analysis, errors.Error]:
        return Failure(errors.permanent("unsupported", "no analyzer is configured"))


async def _ignore_progress(current: int, total: int, message: str) -> None:
    return None


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:  # small reads; the blob store streams them to disk
        while chunk := file.read(CHUNK):
            yield chunk


async def _bytes_chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


class Runtime:
    """jobkit embedded in a Python program: `async with Runtime(folder) as rt:`.

    `folder` holds `jobs.db`, `blobs/` and `doorbell/`. Several processes may open the
    same folder: each runs its own workers over the one database file. A submission rings
    the doorbell once stored, so that idle workers in every process look for it at once.

    `changes` tells readers which jobs changed (`ports.ChangeFeed`): every write through
    `store` at once, other processes' writes by a poll every `changes_poll_seconds` while
    someone watches (None: no poll, for a process that is the only writer).

    Any other stores may stand in: `Runtime(store=..., blobs=...)` runs on those
    ports instead (`jobkit_gcp.runtime` builds one on Firestore and Cloud Storage), with
    any `doorbell` (by default, one that reaches this process's workers only) and any
    `changes` feed (by default, one that polls that store). The runtime opens and closes
    what it is given: a store or blob store that is an async context manager is entered
    with the runtime and left with it.

    `claim_ahead` False: its workers never read the next claim before the last one landed
    (`WorkerConfig.claim_ahead`), for a store that bills reads.

    `fair` False: its SQLite store serves first come, first served within a priority
    instead of claiming fairly across users (`SqliteJobStore`'s `fair`).

    Every store and blob call is timed (`jobkit.worker.observed`): told to `observer`
    when one is given (metrics), and logged at WARNING when slower than `slow_seconds`.
    """

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        store: ports.JobStore | None = None,
        blobs: ports.BlobStore | None = None,
        types: registry.Registry | None = None,
        analyzer: ports.Analyzer | None = None,
        synchronous: Synchronous = "NORMAL",
        clock: Clock = utc_now,
        observer: CallObserver | None = None,
        slow_seconds: float | None = None,
        doorbell: ports.Doorbell | None = None,
        changes: ports.ChangeFeed | None = None,
        changes_poll_seconds: float | None = 1.0,
        claim_ahead: bool = True,
        fair: bool = True,
    ) -> None:
        self.claim_ahead = claim_ahead
        self.folder = None if folder is None else Path(folder)
        if store is None or blobs is None:
            if self.folder is None:
                raise errors.ConfigurationError("Runtime needs a folder, or both store= and blobs=")
            self.folder.mkdir(parents=True, exist_ok=True)
        self.types = types if types is not None else plugins.discover()
        raw_store: ports.JobStore = (
            store
            if store is not None
            else SqliteJobStore(
                _inside(self.folder) / "jobs.db", synchronous=synchronous, fair=fair
            )
        )
        raw_blobs: ports.BlobStore = (
            blobs if blobs is not None else FileBlobStore(_inside(self.folder) / "blobs")
        )
        # The stores as given (opened, closed and probed here), and as everything else uses
        # them: every call timed, and every write rung to the change feed.
        self.raw_store, self.raw_blobs = raw_store, raw_blobs
        self._parts: tuple[object, ...] = (raw_store, raw_blobs)
        self._versions = (
            SqliteVersions(raw_store.path) if isinstance(raw_store, SqliteJobStore) else None
        )
        observed = ObservedStore(raw_store, observer=observer, slow_seconds=slow_seconds)
        feed = (
            changes
            if changes is not None
            else StoreChangeFeed(
                observed, poll_seconds=changes_poll_seconds, versions=self._versions
            )
        )
        self.changes: ports.ChangeFeed = feed
        ringing = getattr(feed, "observe", None)
        self.store: ports.JobStore = ringing(observed) if ringing is not None else observed
        self.blobs = ObservedBlobs(raw_blobs, observer=observer, slow_seconds=slow_seconds)
        self.analyzer: ports.Analyzer = analyzer or NoAnalyzer()
        self._blob_performers = blob_performers(self.blobs)
        self.clock = clock
        self._workers: list[Worker] = []
        self._opened = contextlib.AsyncExitStack()
        self.doorbell: ports.Doorbell = (
            doorbell
            if doorbell is not None
            else InProcessDoorbell()
            if store is not None
            else SocketDoorbell(_inside(self.folder) / "doorbell")
        )

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as opening:
            for part in self._parts:
                if isinstance(part, contextlib.AbstractAsyncContextManager):
                    await opening.enter_async_context(part)
            self._opened = opening.pop_all()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:  # the feed's poll reads the store: it stops first
            close = getattr(self.changes, "close", None)
            if close is not None:
                await close()
            if self._versions is not None:
                self._versions.close()
        finally:
            try:
                await self._opened.aclose()
            finally:
                shut = getattr(self.doorbell, "close", None)
                if shut is not None:
                    shut()

    async def ready(self) -> None:
        """Raise unless the job store and the blob store answer (for `/readyz`)."""
        for part in self._parts:
            if isinstance(part, ports.Probed):
                await part.ready()
        if not isinstance(self._parts[0], ports.Probed):
            await self.store.get(_NO_JOB)

    async def submit(
        self,
        request: Mapping[str, Any],
        *,
        user_id: str = "local",
        document: bytes | Path | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> Result[jobs.Job, errors.Invalid]:
        """Validate and enqueue a job; `document` (bytes or a file path) becomes its input."""
        job_id = commands.new_id()
        now = self.clock()
        source: jobs.Input | None = None
        if document is not None:
            name = filename or (document.name if isinstance(document, Path) else "document")
            kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
            suffix = (mimetypes.guess_extension(kind) or ".bin").lstrip(".")
            key = pipeline.input_key(job_id, suffix)
            chunks = (
                _file_chunks(document) if isinstance(document, Path) else _bytes_chunks(document)
            )
            size = await self.blobs.put(key, chunks, kind)
            source = jobs.Input(
                blob=key, content_type=kind, filename=name, size=size, uri=self.blobs.url(key)
            )
        checked = submission.new_job(
            request, types=self.types, job_id=job_id, user_id=user_id, now=now, input=source
        )
        match checked:
            case Failure(_):
                if source is not None:
                    await self.blobs.delete(source.blob)
                return checked
            case Success(draft):
                job = await commands.submit(self.store, draft, now)
                self.doorbell.ring(jobs.run_at(job))
                return Success(job)
        raise AssertionError("unreachable")

    async def submit_many(
        self, requests: Iterable[Mapping[str, Any]], *, user_id: str = "local"
    ) -> list[Result[jobs.Job, errors.Invalid]]:
        """Validate and enqueue many jobs (without documents) in one write, for bulk loads:
        one outcome per request, in order. Each request is judged alone: an invalid one is
        reported and the valid ones are stored all the same."""
        now = self.clock()
        outcomes: list[Result[jobs.Job, errors.Invalid]] = []
        drafts: list[jobs.Job] = []
        for request in requests:
            checked = submission.new_job(
                request, types=self.types, job_id=commands.new_id(), user_id=user_id, now=now
            )
            outcomes.append(checked)
            if isinstance(checked, Success):
                drafts.append(checked.unwrap())
        if not drafts:
            return outcomes
        submitted = await commands.submit_many(self.store, drafts, now)
        # One ring per job: a doorbell that delivers each ring as one job's worth of work
        # (push dispatch's Cloud Tasks) needs them all; the others coalesce them.
        for job in submitted:
            self.doorbell.ring(jobs.run_at(job))
        stored = iter(submitted)
        return [Success(next(stored)) if isinstance(o, Success) else o for o in outcomes]

    async def get(self, job_id: str) -> jobs.Job | None:
        return await self.store.get(job_id)

    async def cancel(self, job_id: str) -> Result[jobs.Job, commands.Refused]:
        return await self._command(job_id, events.CancelRequested())

    async def retry(self, job_id: str) -> Result[jobs.Job, commands.Refused]:
        retried = await self._command(job_id, events.RetryRequested())
        if isinstance(retried, Success):
            self.doorbell.ring(jobs.run_at(retried.unwrap()))
        return retried

    async def purge(self, job_id: str) -> Result[jobs.Job, commands.Refused]:
        return await self._command(job_id, events.Purged())

    async def _command(
        self, job_id: str, event: events.Event
    ) -> Result[jobs.Job, commands.Refused]:
        return await commands.apply(
            self.store, self.blobs, job_id, event, user_id=None, clock=self.clock
        )

    def performers(self, attempt: Attempt) -> Performers:
        """Blob effects on the folder; `Analyze` on the analyzer, reporting this attempt's
        progress."""
        report = attempt.report or _ignore_progress

        async def analyze(effect: effects.Analyze) -> Result[effects.Analysis, errors.Error]:
            return await self.analyzer.analyze(effect, report)

        return {**self._blob_performers, effects.Analyze: analyze}

    def worker(self, config: WorkerConfig | None = None, **options: Any) -> Worker:
        """A worker over this runtime; `run()` it in a task, or `drain()` it (burst mode)."""
        options.setdefault("doorbell", self.doorbell)
        if not self.claim_ahead:
            config = attrs.evolve(config or WorkerConfig(), claim_ahead=False)
        return Worker(
            store=self.store,
            types=self.types,
            performers_for=self.performers,
            config=config,
            clock=self.clock,
            **options,
        )

    async def drain(self, config: WorkerConfig | None = None) -> int:
        """Run every due job to the end of its attempt, then return how many attempts ran."""
        return await self.worker(config).drain()
