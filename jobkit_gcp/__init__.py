"""jobkit_gcp: Google Cloud interpreters for jobkit (Gemini; Firestore and Cloud Storage to come)."""

from jobkit_gcp.gemini import GeminiAnalyzer, GeminiConfig

__all__ = [
    "GeminiAnalyzer",
    "GeminiConfig",
]
