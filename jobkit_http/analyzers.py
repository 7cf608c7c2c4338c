"""Composition of the analyzer: the one the settings choose, behind the protection it needs.

Gemini is a rate-limited, metered remote service: its calls go through a requests-per-minute
limiter and a circuit breaker (here, around the call) and a tokens-per-minute limiter
(inside the analyzer, which alone knows a document's expected tokens). The offline analyzer
is local CPU work with nothing to protect: it is only timed. Both are built here, once, so
the service, `jobkit worker` and other front ends compose them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobkit import breaker, ports, ratelimit, registry
from jobkit.jobtypes import pdf
from jobkit.local import bounded
from jobkit.worker.wrappers import Breaker, GuardedAnalyzer, RateLimiter
from jobkit_http.metrics import Metrics
from jobkit_http.settings import Settings

if TYPE_CHECKING:
    from jobkit_gcp.gemini import GeminiConfig

Clock = Callable[[], datetime]


def connect(settings: Settings) -> Any:
    """The Gemini client the settings ask for (None for the offline analyzer), built once at
    start-up: `errors.ConfigurationError` when it cannot be (no credentials, no project)."""
    if settings.analyzer != "gemini":
        return None
    from jobkit_gcp.gemini import connect

    return connect(gemini_config(settings))


def build(
    settings: Settings,
    blobs: ports.BlobStore,
    metrics: Metrics,
    clock: Clock,
    *,
    client: Any = None,
    pool: bounded.Runner | None = None,
) -> GuardedAnalyzer:
    """The analyzer of `settings.analyzer`, reading documents from `blobs`; Gemini's through
    `client` (from `connect`), or one connected here. Both parse documents (the offline
    analyzer entirely, Gemini's to check them first) through `pool`, child processes under
    CPU and memory limits (`app.document_pool`); without one, in a thread of this process.
    Calls, waits, breaker moves and Gemini's tokens and cost are told to `metrics`; calls
    slower than `JOBKIT_SLOW_ANALYZE_SECONDS` are logged. `errors.ConfigurationError` when
    Gemini cannot be set up."""
    if settings.analyzer == "gemini":
        from jobkit_gcp.gemini import GeminiAnalyzer

        tokens = ratelimit.TokenBucket.per_window(
            max_requests=settings.gemini_tokens_per_minute, window_seconds=60
        )
        requests = ratelimit.TokenBucket.per_window(
            max_requests=settings.gemini_requests_per_minute, window_seconds=60
        )
        cell = breaker.CircuitBreaker.closed(
            failure_threshold=settings.gemini_breaker_failures,
            cooldown_seconds=settings.gemini_breaker_cooldown_seconds,
        )
        gemini = GeminiAnalyzer(
            blobs,
            gemini_config(settings),
            client=client,
            tokens=RateLimiter(tokens, clock, name="gemini_tokens", observer=metrics.on_wait),
            runner=pool,
        )
        metrics.guarded("gemini", cell.state)
        return GuardedAnalyzer(
            gemini,
            limiter=RateLimiter(requests, clock, name="gemini", observer=metrics.on_wait),
            breaker=Breaker(cell, clock, name="gemini", observer=metrics.on_breaker),
            observer=metrics.on_analyzer_call,
            slow_seconds=settings.slow_analyze_seconds,
            usage=metrics.on_model_usage,
        )
    from jobkit.local.offline import OfflinePdfAnalyzer

    # Local CPU work, bounded by the pool's size (not a calls-per-minute limit): only timed.
    return GuardedAnalyzer(
        OfflinePdfAnalyzer(blobs, runner=pool),
        observer=metrics.on_analyzer_call,
        slow_seconds=settings.slow_analyze_seconds,
    )


def gemini_config(settings: Settings) -> GeminiConfig:
    from jobkit_gcp.gemini import GeminiConfig, Prices

    return GeminiConfig(
        model=settings.gemini_model,
        models=settings.gemini_models,
        project=settings.gcp_project,
        location=settings.vertex_location,
        api_key=settings.gemini_api_key,
        timeout_seconds=settings.gemini_timeout_seconds,
        max_output_tokens=settings.gemini_max_output_tokens,
        max_pages=settings.gemini_max_pages,
        max_bytes=settings.gemini_max_bytes,
        inline_max_bytes=settings.gemini_inline_max_bytes,
        tokens_per_page=settings.gemini_tokens_per_page,
        prices=Prices(
            input_per_million=settings.gemini_input_price,
            output_per_million=settings.gemini_output_price,
        ),
    )


def job_types(settings: Settings, types: registry.Registry) -> registry.Registry:
    """`types` with the PDF type refusing, at submission, models the analyzer does not offer."""
    if settings.analyzer != "gemini" or pdf.NAME not in registry.names(types):
        return types
    allowed = settings.gemini_models | {settings.gemini_model}
    return registry.replace(types, pdf.job_type(models=allowed))


async def close(analyzer: ports.Analyzer) -> None:
    """Release what the analyzer holds open (Gemini's HTTP connections), on shutdown."""
    inner = analyzer.analyzer if isinstance(analyzer, GuardedAnalyzer) else analyzer
    aclose = getattr(inner, "aclose", None)
    if aclose is not None:
        await aclose()
