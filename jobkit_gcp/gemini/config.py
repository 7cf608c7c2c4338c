"""The Gemini analyzer's configuration: backend, model and allow-list, limits, prices."""

from __future__ import annotations

import math
from typing import Any

import attrs

from jobkit import errors

# Gemini 1.5 Pro, which the specification names, was shut down in 2025, and so later were
# 2.5 Pro and 3 Pro Preview; 3.1 Pro is Google's current Pro model (docs/how-to/use-gemini.md).
DEFAULT_MODEL = "gemini-3.1-pro-preview"
DEFAULT_LOCATION = "us-central1"
MIB = 1024 * 1024


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise errors.ConfigurationError(f"{attribute.name} must be finite and > 0, got {value!r}")


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise errors.ConfigurationError(f"{attribute.name} must be finite and >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class Prices:
    """What a million tokens cost, for the estimate a job records: `input` for the prompt
    (the document's pages, the instructions, the schema), `output` for the answer and the
    model's thinking, which Google bills as output."""

    input_per_million: float = attrs.field(default=2.0, validator=_not_negative)
    output_per_million: float = attrs.field(default=12.0, validator=_not_negative)
    currency: str = "USD"


@attrs.frozen(kw_only=True)
class GeminiConfig:
    """How `GeminiAnalyzer` reaches Gemini and what it allows.

    Vertex AI (`project`, `location`, Application Default Credentials) unless `api_key`
    is set, which selects the Gemini Developer API. `base_url` replaces Google's endpoint
    (a private endpoint, or a test's stub server). `models` are allowed besides `model`.
    """

    model: str = DEFAULT_MODEL
    models: frozenset[str] = frozenset()
    project: str | None = None
    location: str = DEFAULT_LOCATION
    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str | None = None
    timeout_seconds: float = attrs.field(default=300.0, validator=_positive)
    max_output_tokens: int = attrs.field(default=16_384, validator=_positive)
    max_pages: int = attrs.field(default=1000, validator=_positive)
    max_bytes: int = attrs.field(default=50 * MIB, validator=_positive)
    inline_max_bytes: int = attrs.field(default=20 * MIB, validator=_positive)
    tokens_per_page: int = attrs.field(default=560, validator=_positive)
    prices: Prices = attrs.field(factory=Prices)

    def __attrs_post_init__(self) -> None:
        if not self.model:
            raise errors.ConfigurationError("the Gemini model must not be empty")
        if not self.location:
            raise errors.ConfigurationError("the Vertex AI location must not be empty")

    @property
    def vertex(self) -> bool:
        """True for Vertex AI, False for the Gemini Developer API (an API key is set)."""
        return not self.api_key

    @property
    def allowed_models(self) -> frozenset[str]:
        """The models a job may ask for: the default one and the listed ones."""
        return self.models | {self.model}
