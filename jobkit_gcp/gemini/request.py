"""What is sent to Gemini for one `Analyze`: the prompt, the response schema, the settings,
and the input tokens it is expected to cost (for the tokens-per-minute limiter)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from google.genai import types

from jobkit import _frozen, effects
from jobkit_gcp.gemini.config import GeminiConfig

PDF = "application/pdf"

SYSTEM_INSTRUCTION = (
    "You analyse the attached PDF document as the user's instructions ask. Answer with JSON"
    " that matches the response schema and nothing else. Base every value on the document:"
    " where it does not say, use an empty string or an empty list rather than a guess."
)

# Without a schema from the user: the facts the offline analyzer reports, and a summary.
DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "The document's title."},
        "authors": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Who wrote the document, people or organisations.",
        },
        "date": {
            "type": "string",
            "description": "When the document was written or published, ISO 8601 if exact.",
        },
        "summary": {"type": "string", "description": "A short summary of the document."},
        "keyPoints": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The document's key points, one sentence each.",
        },
    },
    "required": ["title", "authors", "date", "summary", "keyPoints"],
}

CHARACTERS_PER_TOKEN = 4  # Google's rule of thumb for English text


@attrs.frozen(kw_only=True)
class Request:
    """One `generateContent` call, less the document part (added once it is placed)."""

    model: str
    prompt: str
    schema: Mapping[str, Any]
    config: types.GenerateContentConfig
    estimated_input_tokens: int


def schema_of(effect: effects.Analyze) -> dict[str, Any]:
    """The JSON Schema the answer must match: the user's, or the default structure."""
    if effect.schema is None:
        return DEFAULT_SCHEMA
    thawed: dict[str, Any] = _frozen.thaw(effect.schema)
    return thawed


def build(effect: effects.Analyze, model: str, pages: int, config: GeminiConfig) -> Request:
    schema = schema_of(effect)
    settings = types.GenerateContentConfig(
        system_instruction=SYSTEM_INSTRUCTION,
        response_mime_type="application/json",
        response_json_schema=schema,
        max_output_tokens=config.max_output_tokens,
    )
    text = len(SYSTEM_INSTRUCTION) + len(effect.instructions) + len(json.dumps(schema))
    estimate = pages * config.tokens_per_page + text // CHARACTERS_PER_TOKEN + 1
    return Request(
        model=model,
        prompt=effect.instructions,
        schema=schema,
        config=settings,
        estimated_input_tokens=estimate,
    )


def contents(document: types.Part, request: Request) -> list[types.Part]:
    """The document first, then the instructions, as Google advises for a single PDF."""
    return [document, types.Part.from_text(text=request.prompt)]
