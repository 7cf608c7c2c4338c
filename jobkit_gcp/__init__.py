"""jobkit_gcp: Firestore, Cloud Storage and Gemini interpreters for jobkit (not built yet)."""

__all__: list[str] = []
