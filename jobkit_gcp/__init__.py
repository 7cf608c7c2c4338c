"""jobkit_gcp: Google Cloud interpreters for jobkit: the Gemini analyzer (Firestore, GCS next)."""

from jobkit_gcp.gemini import GeminiAnalyzer, GeminiConfig

__all__ = [
    "GeminiAnalyzer",
    "GeminiConfig",
]
