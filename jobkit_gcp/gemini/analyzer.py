"""`GeminiAnalyzer`: a `ports.Analyzer` that asks Gemini about a PDF and checks its answer.

Theory of operation. One `analyze` is one attempt: check the document (size, then pages,
before any call, so a document the model would refuse costs nothing), place it (its
`gs://` location on Vertex AI when the blob store is Cloud Storage, else inline bytes,
else a Files API upload in developer mode), reserve its expected input tokens with the
tokens-per-minute limiter, call `generateContent` once, then settle the limiter with
the tokens really used and turn the answer into an `Analysis` or a named error.

The SDK's own retries are off (`HttpRetryOptions(attempts=1)`): retries belong to the
job's policy, where they show in its history. Every exception the SDK is expected to
raise becomes an error value here (`classify`); anything else is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time

import google.auth
import google.auth.credentials
import google.auth.exceptions
from google import genai
from google.genai import types
from returns.result import Failure, Result, Success

from jobkit import effects, errors, ports
from jobkit.local import bounded
from jobkit.worker.wrappers import RateLimiter
from jobkit_gcp.gemini import answer, classify, document, request, usage
from jobkit_gcp.gemini.config import GeminiConfig

log = logging.getLogger("jobkit.gemini")

FILE_POLL_SECONDS = 0.5
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def connect(
    config: GeminiConfig, credentials: google.auth.credentials.Credentials | None = None
) -> genai.Client:
    """The SDK's client for `config`: Vertex AI with `credentials`, or the Developer API with
    the key. Without credentials, Application Default Credentials are resolved here, at
    start-up (from the metadata server on Cloud Run), so that a service that has none
    refuses to start rather than fail every job; `config.project` defaults to theirs."""
    options = types.HttpOptions(
        base_url=config.base_url,
        timeout=round(config.timeout_seconds * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    try:
        if not config.vertex:
            return genai.Client(vertexai=False, api_key=config.api_key, http_options=options)
        project = config.project
        if credentials is None:
            credentials, found = google.auth.default(scopes=[CLOUD_PLATFORM])
            project = project or found
        if not project:
            raise errors.ConfigurationError(
                "no Google Cloud project for Vertex AI: set JOBKIT_GCP_PROJECT"
            )
        return genai.Client(
            vertexai=True,
            project=project,
            location=config.location,
            credentials=credentials,
            http_options=options,
        )
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise errors.ConfigurationError(
            f"no Google credentials for Vertex AI (Application Default Credentials: {e});"
            " or set GOOGLE_API_KEY to use the Gemini Developer API"
        ) from e
    except (ValueError, google.auth.exceptions.GoogleAuthError) as e:
        raise errors.ConfigurationError(f"cannot set up the Gemini client: {e}") from e


class GeminiAnalyzer:
    """PDF analysis by Gemini: the job's instructions as the prompt, its schema (or the
    default structure) as the response schema, the answer validated against it."""

    def __init__(
        self,
        blobs: ports.BlobStore,
        config: GeminiConfig,
        *,
        client: genai.Client | None = None,
        tokens: RateLimiter | None = None,
        runner: bounded.Runner | None = None,
    ) -> None:
        self.config = config
        self.client = client or connect(config)
        self.tokens = tokens
        self._blobs = blobs
        # Parses the PDF (its page count) before any call: a bounded pool in the service.
        self._runner: bounded.Runner = runner if runner is not None else bounded.InThread()

    async def aclose(self) -> None:
        """Close the client's connections (on shutdown, from the loop that used them)."""
        await self.client.aio.aclose()
        self.client.close()

    async def analyze(
        self, effect: effects.Analyze, progress: ports.Progress
    ) -> Result[effects.Analysis, errors.Error]:
        model = effect.model or self.config.model
        if model not in self.config.allowed_models:
            return Failure(
                errors.permanent("model_not_allowed", f"this service does not offer {model}")
            )
        checked = answer.check_schema(effect)
        if checked is not None:
            return Failure(checked)
        loaded = await self._load(effect)
        match loaded:
            case Failure(_):
                return loaded
            case Success((data, facts)):
                pass
        await progress(1, 3, f"{facts.pages} pages checked; asking {model}")
        ask = request.build(effect, model, facts.pages, self.config)
        reserved = await self.tokens.reserve(ask.estimated_input_tokens) if self.tokens else 0.0
        started = time.perf_counter()
        answered = await self._call(effect, data, ask)
        seconds = time.perf_counter() - started
        match answered:
            case Failure(err):
                self._settle(reserved, err)
                log.info(
                    "gemini call failed",
                    extra={"model": model, "key": effect.key, "code": err.code, "seconds": seconds},
                )
                return answered
            case Success(response):
                pass
        used = usage.usage_of(response.usage_metadata)
        if self.tokens is not None:
            self.tokens.adjust(used.get("promptTokens", reserved) - reserved)
        cost = usage.cost_of(used, self.config.prices)
        log.info(
            "gemini call",
            extra={"model": model, "key": effect.key, "usage": used, "cost": cost["amount"]},
        )
        await progress(2, 3, "checking the answer")
        return answer.analysis(response, ask, model, facts.pages, used, cost)

    async def _load(
        self, effect: effects.Analyze
    ) -> Result[tuple[bytes, document.Facts], errors.Error]:
        if effect.content_type != request.PDF:
            return Failure(
                errors.permanent("unsupported", f"Gemini is given PDFs, not {effect.content_type}")
            )
        try:
            size, _ = await self._blobs.stat(effect.key)
            if size > self.config.max_bytes:
                return Failure(_too_large(size, self.config.max_bytes))
            data = await self._blobs.read(effect.key)
        except ports.BlobNotFound:
            return Failure(
                errors.permanent("not_found", f"no blob at {effect.key!r}", key=effect.key)
            )
        inspected = await document.inspect(self._runner, data, max_pages=self.config.max_pages)
        return inspected.map(lambda facts: (data, facts))

    async def _call(
        self, effect: effects.Analyze, data: bytes, ask: request.Request
    ) -> Result[types.GenerateContentResponse, errors.Error]:
        uploaded: types.File | None = None
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                placed = await self._place(effect, data)
                match placed:
                    case Failure(_):
                        return placed
                    case Success((part, uploaded)):
                        pass
                response = await self.client.aio.models.generate_content(
                    model=ask.model, contents=request.contents(part, ask), config=ask.config
                )
                return Success(response)
        except Exception as e:
            known = classify.from_exception(e, ask.model)
            if known is None:
                raise
            return Failure(known)
        finally:
            if uploaded is not None and uploaded.name:
                await self._forget(uploaded.name)

    async def _place(
        self, effect: effects.Analyze, data: bytes
    ) -> Result[tuple[types.Part, types.File | None], errors.Error]:
        """The document as a file part: where Vertex AI can read it, inline, or uploaded."""
        location = self._blobs.url(effect.key)
        if self.config.vertex and location is not None and location.startswith("gs://"):
            return Success((types.Part.from_uri(file_uri=location, mime_type=request.PDF), None))
        if len(data) <= self.config.inline_max_bytes:
            return Success((types.Part.from_bytes(data=data, mime_type=request.PDF), None))
        if self.config.vertex:
            return Failure(
                _too_large(
                    len(data),
                    self.config.inline_max_bytes,
                    "to send it inline; keep documents in Cloud Storage for larger ones",
                )
            )
        uploaded = await self.client.aio.files.upload(
            file=io.BytesIO(data), config=types.UploadFileConfig(mime_type=request.PDF)
        )
        ready = await self._ready(uploaded)
        if (ready.state is not None and ready.state != types.FileState.ACTIVE) or not ready.uri:
            return Failure(
                errors.permanent(
                    "corrupt_document",
                    f"the Files API could not process the document ({ready.state}):"
                    f" {ready.error.message if ready.error else 'no reason given'}",
                )
            )
        part = types.Part.from_uri(file_uri=ready.uri, mime_type=request.PDF)
        return Success((part, uploaded))

    async def _ready(self, uploaded: types.File) -> types.File:
        current = uploaded
        while current.state == types.FileState.PROCESSING and current.name:
            await asyncio.sleep(FILE_POLL_SECONDS)
            current = await self.client.aio.files.get(name=current.name)
        return current

    async def _forget(self, name: str) -> None:
        """Delete an uploaded file at once rather than leave it for its 48-hour expiry.
        Best effort: a failure here must not fail an attempt that got its answer."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await self.client.aio.files.delete(name=name)

    def _settle(self, reserved: float, err: errors.Error) -> None:
        """A request Gemini refused or never received used no input tokens: give them back.
        After a timeout or a lost connection it may have run, so the reservation stands."""
        if self.tokens is not None and "httpStatus" in err.context:
            self.tokens.adjust(-reserved)


def _too_large(size: int, limit: int, purpose: str = "for the model") -> errors.Error:
    return errors.permanent(
        "document_too_large",
        f"the document is {size} bytes; at most {limit} can be sent {purpose}",
        bytes=size,
        max_bytes=limit,
    )
