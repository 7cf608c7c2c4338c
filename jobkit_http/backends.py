"""Where the service keeps jobs and files, chosen by `JOBKIT_BACKEND`: SQLite and a folder
(the embedded default) or Firestore and Cloud Storage (`jobkit_gcp`). What analyses the
documents (`JOBKIT_ANALYZER`, whatever the backend) is `jobkit_http.analyzers`.

Both backends are a `jobkit.local.Runtime`, so everything above the ports is the same.
Google's libraries are imported only when the GCP backend is chosen. A wrong GCP setting
becomes one `ConfigurationError` line naming the variable to fix.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from jobkit import errors, ports, registry
from jobkit.local import Runtime
from jobkit.worker.observed import CallObserver
from jobkit.worker.worker import Clock, utc_now
from jobkit_http import signing
from jobkit_http.problems import Problem
from jobkit_http.settings import Settings

if TYPE_CHECKING:
    from jobkit_gcp import backend as gcp

log = logging.getLogger("jobkit.service")

# The variable a person sets to fix each GCP setting `jobkit_gcp` may find wrong.
VARIABLES: Final = {
    "credentials": "GOOGLE_APPLICATION_CREDENTIALS",
    "project": "JOBKIT_GCP_PROJECT",
    "database": "JOBKIT_FIRESTORE_DATABASE",
    "collection": "JOBKIT_FIRESTORE_COLLECTION",
    "bucket": "JOBKIT_GCS_BUCKET",
    "prefix": "JOBKIT_GCS_PREFIX",
}


def runtime_for(
    settings: Settings,
    *,
    types: registry.Registry | None = None,
    clock: Clock = utc_now,
    observer: CallObserver | None = None,
    doorbell: ports.Doorbell | None = None,
) -> Runtime:
    """The runtime `settings` choose, not yet opened (`async with` it); its store and blob
    calls told to `observer` (metrics) and logged when slower than the settings allow;
    ringing `doorbell` when given (push dispatch's, from `doorbell_for`)."""
    slow = settings.slow_call_seconds
    if settings.backend == "gcp":
        from jobkit_gcp import backend

        try:
            return backend.runtime(
                gcp_config(settings),
                types=types,
                clock=clock,
                observer=observer,
                slow_seconds=slow,
                changes_poll_seconds=settings.changes_poll_seconds,
                listen=settings.firestore_listen,
                queues=settings.queues,
                wake=doorbell,
                fair=settings.fair_claiming,
            )
        except backend.SetupError as exc:
            raise one_line(exc) from None
    return Runtime(
        settings.data,
        types=types,
        synchronous=settings.sqlite_synchronous,
        fair=settings.fair_claiming,
        clock=clock,
        observer=observer,
        slow_seconds=slow,
        changes_poll_seconds=settings.changes_poll_seconds,
    )


def doorbell_for(
    settings: Settings, observer: CallObserver | None = None
) -> AbstractAsyncContextManager[Any]:
    """Push dispatch's doorbell (Cloud Tasks) to open around the runtime, with
    `JOBKIT_DISPATCH=push`; else nothing (`None` inside)."""
    if settings.dispatch != "push":
        return nullcontext(None)
    from jobkit_gcp import tasks

    assert settings.tasks_queue is not None  # settings.from_env requires them with `push`
    assert settings.dispatch_url is not None
    return tasks.CloudTasksDoorbell(
        tasks.TasksConfig(
            queue=settings.tasks_queue,
            url=settings.dispatch_url,
            service_account=settings.dispatch_service_account,
            audience=settings.dispatch_audience or settings.dispatch_url,
            secret=settings.dispatch_secret,
            emulator_host=settings.tasks_emulator_host,
        ),
        observer=observer,
    )


async def verify(runtime: Runtime, settings: Settings) -> None:
    """At start-up: a wrong GCP setting raises `ConfigurationError` (one line, naming the
    variable); a service that does not answer yet is logged, and `/readyz` says so."""
    if settings.backend != "gcp":
        return
    from jobkit_gcp import backend
    from jobkit_gcp.firestore import FirestoreJobStore
    from jobkit_gcp.gcs import GcsBlobStore

    store, blobs = runtime.raw_store, runtime.raw_blobs
    assert isinstance(store, FirestoreJobStore)
    assert isinstance(blobs, GcsBlobStore)
    try:
        silent = await backend.check(store, blobs, gcp_config(settings))
    except backend.SetupError as exc:
        raise one_line(exc) from None
    for problem in silent:
        log.warning("backend not ready at start-up: %s", problem, extra={"problem": problem})


def upload_signer(settings: Settings, runtime: Runtime) -> signing.UploadSigner:
    """Who signs direct-upload URLs: V4 signed URLs to the bucket on GCP (signed with the
    credentials' key, or through IAM on Cloud Run), else the service's own HMAC-signed
    route, with a key in the data folder."""
    if settings.backend != "gcp":
        return signing.local_signer(settings.data)
    from jobkit_gcp.gcs import GcsBlobStore
    from jobkit_gcp.signed_urls import GcsUploadSigner

    blobs = runtime.raw_blobs
    assert isinstance(blobs, GcsBlobStore)
    return _BucketSigner(GcsUploadSigner(blobs))


class _BucketSigner:
    """`signing.UploadSigner` over `jobkit_gcp.signed_urls` (which cannot import this
    package): the bucket is the upload's target, so the service's own `route` is unused."""

    def __init__(self, signer: Any) -> None:
        self._signer = signer

    async def sign(
        self,
        key: str,
        *,
        route: str,
        content_type: str,
        max_bytes: int,
        expires_at: datetime,
        resumable: bool,
    ) -> signing.Signed:
        from jobkit_gcp.signed_urls import SigningError

        try:
            signed = await self._signer.sign(
                key,
                content_type=content_type,
                max_bytes=max_bytes,
                expires_at=expires_at,
                resumable=resumable,
            )
        except SigningError as exc:
            log.error("an upload URL could not be signed: %s", exc)
            raise Problem(503, "signing-failed", "an upload URL could not be signed") from None
        return signing.Signed(
            method=signed.method, url=signed.url, headers=signed.headers, resumable=signed.resumable
        )


def describe(settings: Settings) -> str:
    """Where jobs and files are, for a start-up line."""
    if settings.backend == "gcp":
        prefix = f"/{settings.gcs_prefix}" if settings.gcs_prefix else ""
        return (
            f"jobs in Firestore {settings.gcp_project or '(default project)'}"
            f"/{settings.firestore_database}/{settings.firestore_collection},"
            f" files in gs://{settings.gcs_bucket}{prefix}"
        )
    return f"data in {settings.data}"


def gcp_config(settings: Settings) -> gcp.Config:
    from jobkit_gcp import backend

    assert settings.gcs_bucket is not None  # settings.from_env requires it with `gcp`
    return backend.Config(
        bucket=settings.gcs_bucket,
        project=settings.gcp_project,
        database=settings.firestore_database,
        collection=settings.firestore_collection,
        prefix=settings.gcs_prefix,
    )


def one_line(exc: gcp.SetupError) -> errors.ConfigurationError:
    return errors.ConfigurationError(f"{VARIABLES[exc.setting]}: {exc}")
