"""The embedded default: a SQLite job store, a folder of blobs, and a runtime over both."""

from jobkit.local.blobs import FileBlobStore
from jobkit.local.runtime import Runtime
from jobkit.local.sqlite import SqliteJobStore

__all__ = ["FileBlobStore", "Runtime", "SqliteJobStore"]
