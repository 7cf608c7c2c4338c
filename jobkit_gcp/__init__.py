"""jobkit_gcp: Firestore, Cloud Storage and Gemini interpreters for jobkit.

`runtime(Config(bucket=...))` is jobkit's library `Runtime` on Firestore and Cloud
Storage; the stores alone are `FirestoreJobStore` and `GcsBlobStore`.
"""

from jobkit_gcp.backend import Config, SetupError, runtime
from jobkit_gcp.firestore import FirestoreJobStore
from jobkit_gcp.gcs import GcsBlobStore

__all__ = ["Config", "FirestoreJobStore", "GcsBlobStore", "SetupError", "runtime"]
