"""jobkit_gcp's curated namespace: what it lists exists, and the Gemini package's too."""

from __future__ import annotations

import jobkit_gcp
from jobkit_gcp import gemini


def test_every_listed_name_exists() -> None:
    for package in (jobkit_gcp, gemini):
        assert all(hasattr(package, name) for name in package.__all__)
        assert len(set(package.__all__)) == len(package.__all__)


def test_the_gemini_analyzer_is_offered_at_the_top() -> None:
    assert {"GeminiAnalyzer", "GeminiConfig"} <= set(jobkit_gcp.__all__)
    assert jobkit_gcp.GeminiAnalyzer is gemini.GeminiAnalyzer
