"""The embedded default: a SQLite job store, a folder of blobs, a change feed, and a runtime
over them."""

from jobkit.local.blobs import FileBlobStore
from jobkit.local.feed import StoreChangeFeed
from jobkit.local.runtime import Runtime
from jobkit.local.sqlite import SqliteJobStore

__all__ = ["FileBlobStore", "Runtime", "SqliteJobStore", "StoreChangeFeed"]
