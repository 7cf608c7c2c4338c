"""Shared pieces of the Gemini tests: documents, a blob store, configurations, a call."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import google.oauth2.credentials
import pypdf
from returns.result import Result

from jobkit import effects, errors, ports
from jobkit.local.blobs import FileBlobStore
from jobkit_gcp.gemini import GeminiAnalyzer, GeminiConfig, connect
from jobkit_http import samples
from tests.jobkit_gcp.gemini_server import GeminiServer

SAMPLE = Path(samples.__file__).with_name("sample.pdf").read_bytes()  # three pages
KEY = "inputs/job-1/document.pdf"
PROJECT = "test-project"
SCHEMA = {
    "type": "object",
    "properties": {"risks": {"type": "array", "items": {"type": "string"}}},
    "required": ["risks"],
}
INSTRUCTIONS = "List the risks the document names."


def pdf(pages: int) -> bytes:
    """A real PDF of `pages` blank pages."""
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class GcsLocatedBlobs(FileBlobStore):
    """Files on disk that say they live in Cloud Storage, as the GCS blob store's `url` does:
    what the analyzer looks at to hand Vertex AI a `gs://` location instead of bytes."""

    def url(self, key: str) -> str:
        return f"gs://jobkit-test-bucket/{key}"


def vertex(server: GeminiServer, **overrides: Any) -> GeminiConfig:
    options: dict[str, Any] = {
        "project": PROJECT,
        "location": "us-central1",
        "base_url": server.base_url,
        "timeout_seconds": 5.0,
        **overrides,
    }
    return GeminiConfig(**options)


def developer(server: GeminiServer, **overrides: Any) -> GeminiConfig:
    options: dict[str, Any] = {
        "api_key": server.api_key,
        "base_url": server.base_url,
        "timeout_seconds": 5.0,
        **overrides,
    }
    return GeminiConfig(**options)


def analyzer(
    blobs: ports.BlobStore, config: GeminiConfig, server: GeminiServer, **options: Any
) -> GeminiAnalyzer:
    """The analyzer as deployed; on Vertex AI with a fixed access token where a test is not
    about Application Default Credentials (those have their own tests)."""
    credentials = (
        google.oauth2.credentials.Credentials(token=server.token)  # type: ignore[no-untyped-call]
        if config.vertex
        else None
    )
    return GeminiAnalyzer(blobs, config, client=connect(config, credentials), **options)


def effect(
    *, schema: dict[str, Any] | None = SCHEMA, model: str | None = None, key: str = KEY
) -> effects.Analyze:
    return effects.Analyze(
        key=key,
        content_type="application/pdf",
        instructions=INSTRUCTIONS,
        schema=schema,
        model=model,
    )


async def _ignore(current: int, total: int, message: str) -> None:
    return None


def run(
    subject: GeminiAnalyzer, *requests: effects.Analyze
) -> Result[effects.Analysis, errors.Error]:
    """Analyse `requests` in turn on one event loop, close the analyzer; the last outcome."""

    async def main() -> Result[effects.Analysis, errors.Error]:
        try:
            outcomes = [await subject.analyze(request, _ignore) for request in requests]
        finally:
            await subject.aclose()
        return outcomes[-1]

    return asyncio.run(main())


def store(root: Path, data: bytes = SAMPLE, *, gcs: bool = False) -> FileBlobStore:
    blobs = GcsLocatedBlobs(root) if gcs else FileBlobStore(root)
    asyncio.run(blobs.put_bytes(KEY, data, "application/pdf"))
    return blobs


def clock() -> datetime:
    return datetime.now(UTC)
