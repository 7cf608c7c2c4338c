"""What a call used and what it cost: Gemini's `usageMetadata` as a job's usage and cost."""

from __future__ import annotations

from typing import Any

from google.genai import types

from jobkit_gcp.gemini.config import Prices


def usage_of(metadata: types.GenerateContentResponseUsageMetadata | None) -> dict[str, int]:
    """Tokens by kind: `promptTokens` (the document and the instructions), `outputTokens`
    (the answer), `thoughtsTokens` (the model's thinking, billed as output), `totalTokens`."""
    if metadata is None:
        return {}
    prompt = metadata.prompt_token_count or 0
    output = metadata.candidates_token_count or 0
    thoughts = metadata.thoughts_token_count or 0
    total = metadata.total_token_count or prompt + output + thoughts
    usage = {"promptTokens": prompt, "outputTokens": output, "totalTokens": total}
    if thoughts:
        usage["thoughtsTokens"] = thoughts
    if metadata.cached_content_token_count:
        usage["cachedTokens"] = metadata.cached_content_token_count
    return usage


def cost_of(usage: dict[str, int], prices: Prices) -> dict[str, Any]:
    """The estimated cost of `usage` at `prices`: input at the input price, the answer and
    the thinking at the output price. An estimate: Google's invoice is the authority."""
    billed_output = usage.get("outputTokens", 0) + usage.get("thoughtsTokens", 0)
    amount = (
        usage.get("promptTokens", 0) * prices.input_per_million
        + billed_output * prices.output_per_million
    ) / 1_000_000
    return {
        "currency": prices.currency,
        "amount": round(amount, 6),
        "inputPerMillion": prices.input_per_million,
        "outputPerMillion": prices.output_per_million,
        "estimated": True,
    }
