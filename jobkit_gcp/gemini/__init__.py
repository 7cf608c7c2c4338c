"""PDF analysis by Google's Gemini, on Vertex AI or the Gemini Developer API."""

from jobkit_gcp.gemini.analyzer import GeminiAnalyzer, connect
from jobkit_gcp.gemini.config import DEFAULT_MODEL, GeminiConfig, Prices

__all__ = ["DEFAULT_MODEL", "GeminiAnalyzer", "GeminiConfig", "Prices", "connect"]
