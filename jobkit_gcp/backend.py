"""The GCP runtime: a Firestore job store and a Cloud Storage blob store from plain settings.

`runtime(config)` builds both clients (no request is made yet) and a
`jobkit.local.Runtime` over them; `check(runtime, config)` asks each service
once. A wrong setting (no credentials, no such database or bucket, no access)
raises `SetupError` naming the setting at fault, so that the composition root
can say it in one line; a service that does not answer is only reported, as
`/readyz` reports it while it lasts.

The clients honour their own variables: `FIRESTORE_EMULATOR_HOST` and
`STORAGE_EMULATOR_HOST` point them at the emulators, with no path of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Final, Literal

import attrs
import google.auth.exceptions
from google.api_core import exceptions
from google.cloud import firestore, storage

from jobkit import errors, ports, registry
from jobkit.local.runtime import Runtime
from jobkit.worker.observed import CallObserver
from jobkit.worker.worker import Clock, utc_now
from jobkit_gcp.firestore import FirestoreJobStore
from jobkit_gcp.firestore_doorbell import FirestoreDoorbell
from jobkit_gcp.firestore_feed import FirestoreChangeFeed
from jobkit_gcp.gcs import GcsBlobStore, normalize_prefix

Setting = Literal["credentials", "project", "database", "collection", "bucket", "prefix"]
PROBE_SECONDS: Final = 10.0


@attrs.frozen(kw_only=True)
class Config:
    """Where jobs and files live. `project` None: the clients find it (`GOOGLE_CLOUD_PROJECT`,
    the credentials, or the metadata server on Google Cloud)."""

    bucket: str
    project: str | None = None
    database: str = "(default)"
    collection: str = "jobs"
    prefix: str = ""


class SetupError(errors.ConfigurationError):
    """A setting is wrong: `setting` names it, the message says how."""

    def __init__(self, setting: Setting, message: str) -> None:
        super().__init__(message)
        self.setting: Setting = setting


def stores(config: Config, *, fair: bool = True) -> tuple[FirestoreJobStore, GcsBlobStore]:
    """Both stores, on new clients; `SetupError` when the clients cannot be built."""
    if not config.collection or "/" in config.collection or config.collection.startswith("__"):
        raise SetupError("collection", f"{config.collection!r} is not a collection id")
    try:
        prefix = normalize_prefix(config.prefix)
    except ValueError as exc:
        raise SetupError("prefix", str(exc)) from None
    try:
        documents = firestore.AsyncClient(project=config.project, database=config.database)
        files = storage.Client(project=config.project)
    except google.auth.exceptions.DefaultCredentialsError:
        raise SetupError(
            "credentials",
            "no Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS, run"
            " `gcloud auth application-default login`, or run on Google Cloud",
        ) from None
    except OSError as exc:  # the client found credentials but no project
        raise SetupError("project", f"no Google Cloud project: {exc}") from None
    return (
        FirestoreJobStore(documents, collection=config.collection, fair=fair),
        GcsBlobStore(files, config.bucket, prefix=prefix),
    )


def listening_client(config: Config) -> firestore.Client:
    """A sync client for snapshot listeners (the async client has none); `SetupError` when
    it cannot be built."""
    try:
        return firestore.Client(project=config.project, database=config.database)
    except google.auth.exceptions.DefaultCredentialsError:
        raise SetupError("credentials", "no Google Cloud credentials") from None
    except OSError as exc:
        raise SetupError("project", f"no Google Cloud project: {exc}") from None


def runtime(
    config: Config,
    *,
    types: registry.Registry | None = None,
    analyzer: ports.Analyzer | None = None,
    clock: Clock = utc_now,
    observer: CallObserver | None = None,
    slow_seconds: float | None = None,
    changes_poll_seconds: float | None = 1.0,
    listen: bool = True,
    queues: Collection[str] | None = None,
    wake: ports.Doorbell | None = None,
    fair: bool = True,
) -> Runtime:
    """A `Runtime` on Firestore and Cloud Storage; enter it (`async with`) to use it. Every
    store and blob call is timed, as `Runtime` says. `fair`: claim fairly across users
    (`FirestoreJobStore`'s `fair`).

    Wake-ups: `wake` when given (push dispatch brings its own doorbell); else, with
    `listen`, a Firestore listener on the head of the pending jobs of `queues` (the queues
    this process's workers take; None: all), else one that reaches this process only.
    With `listen`, readers wait on Firestore listeners too (`FirestoreChangeFeed`), not on a
    poll of the store every `changes_poll_seconds`."""
    store, blobs = stores(config, fair=fair)
    bell, feed = wake, None
    if listen:  # one sync client, for every listener of this process
        client = listening_client(config)
        if bell is None:
            bell = FirestoreDoorbell(client, collection=config.collection, queues=queues)
            store.head = bell.head
        feed = FirestoreChangeFeed(store, client, collection=config.collection)
    return Runtime(
        store=store,
        blobs=blobs,
        types=types,
        analyzer=analyzer,
        clock=clock,
        observer=observer,
        slow_seconds=slow_seconds,
        changes_poll_seconds=changes_poll_seconds,
        doorbell=bell,
        changes=feed,
        claim_ahead=False,  # Firestore bills each read of a job being claimed
    )


async def check(store: FirestoreJobStore, blobs: GcsBlobStore, config: Config) -> list[str]:
    """Ask Firestore and the bucket once. A wrong setting raises `SetupError`; the services
    that did not answer are returned, described (the caller may start anyway)."""
    silent: list[str] = []
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            await store.ready()
    except (TimeoutError, exceptions.ServiceUnavailable, exceptions.DeadlineExceeded) as exc:
        silent.append(f"Firestore does not answer ({type(exc).__name__})")
    except Exception as exc:
        raise _firestore_problem(exc, config) from None
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            await blobs.ready()
    except (TimeoutError, exceptions.ServiceUnavailable, ConnectionError) as exc:
        silent.append(f"Cloud Storage does not answer ({type(exc).__name__})")
    except Exception as exc:
        if _unreachable(exc):
            silent.append(f"Cloud Storage does not answer ({type(exc).__name__})")
        else:
            raise _storage_problem(exc, config) from None
    return silent


def _firestore_problem(exc: Exception, config: Config) -> SetupError:
    where = f"database {config.database!r} of project {config.project or '(default)'!r}"
    if isinstance(exc, exceptions.NotFound):
        return SetupError("database", f"Firestore has no {where}")
    if isinstance(exc, exceptions.PermissionDenied):
        return SetupError("project", f"no access to Firestore {where}: {_first_line(exc)}")
    if isinstance(exc, exceptions.Unauthenticated | google.auth.exceptions.GoogleAuthError):
        return SetupError("credentials", f"Firestore refused the credentials: {_first_line(exc)}")
    return SetupError("database", f"Firestore {where} failed: {_first_line(exc)}")


def _storage_problem(exc: Exception, config: Config) -> SetupError:
    if isinstance(exc, exceptions.NotFound):
        return SetupError("bucket", f"bucket {config.bucket!r} does not exist")
    if isinstance(exc, exceptions.Forbidden):
        return SetupError("bucket", f"no access to bucket {config.bucket!r}: {_first_line(exc)}")
    if isinstance(exc, exceptions.Unauthorized | google.auth.exceptions.GoogleAuthError):
        return SetupError(
            "credentials", f"Cloud Storage refused the credentials: {_first_line(exc)}"
        )
    return SetupError("bucket", f"bucket {config.bucket!r} failed: {_first_line(exc)}")


def _unreachable(exc: BaseException) -> bool:
    """A connection that failed (the HTTP library's own errors, which are OSErrors)."""
    return isinstance(exc, OSError) or isinstance(exc.__cause__, OSError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
