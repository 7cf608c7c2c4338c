"""jobkit_gcp: Firestore, Cloud Storage and Gemini interpreters for jobkit.

`runtime(Config(bucket=...))` is jobkit's library `Runtime` on Firestore and Cloud
Storage; the stores alone are `FirestoreJobStore` and `GcsBlobStore`, and their
listeners `FirestoreDoorbell` (wake-ups) and `FirestoreChangeFeed` (changes for readers);
`GeminiAnalyzer` analyses PDFs with Gemini on Vertex AI or the Developer API.
"""

from jobkit_gcp.backend import Config, SetupError, runtime
from jobkit_gcp.firestore import FirestoreJobStore
from jobkit_gcp.firestore_doorbell import FirestoreDoorbell
from jobkit_gcp.firestore_feed import FirestoreChangeFeed
from jobkit_gcp.gcs import GcsBlobStore
from jobkit_gcp.gemini import GeminiAnalyzer, GeminiConfig

__all__ = [
    "Config",
    "FirestoreChangeFeed",
    "FirestoreDoorbell",
    "FirestoreJobStore",
    "GcsBlobStore",
    "GeminiAnalyzer",
    "GeminiConfig",
    "SetupError",
    "runtime",
]
