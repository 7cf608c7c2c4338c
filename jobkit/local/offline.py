"""An offline `ports.Analyzer`: extracts a PDF's text and metadata with pypdf, page by page.

Theory of operation. The document is read from the blob store once, as bytes (pypdf reads a
path wholly into memory too, and `io.BytesIO` shares the bytes instead of copying them). All
pypdf work is CPU-bound, so it runs in threads: one call opens the document and checks it,
then one call per page extracts that page's text, and progress is reported from the event
loop between pages. The reader is only ever used by one thread at a time.

This module is the boundary where pypdf's exceptions become values: a damaged file makes
pypdf raise its own errors, or plain `ValueError`, `KeyError` and friends from deep inside
the parser, and none of them may reach the worker. pypdf reports the problems it works
around through `logging` (and uses `warnings` only for deprecated calls, which are ours to
fix), so nothing here touches the process-wide, thread-unsafe warnings filters.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs
import pypdf
from pypdf import errors as pdf_errors
from returns.result import Failure, Result, Success

from jobkit import effects, errors, ports

__all__ = ["MODEL", "OVERVIEW_CHARS", "OfflinePdfAnalyzer"]

T = TypeVar("T")

MODEL = "offline-pypdf"
OVERVIEW_CHARS = 2_000
NOTE = "offline analysis extracts text; it does not follow instructions"
SCHEMA_NOTE = "; it ignores the requested schema"
# Acrobat accepts a header anywhere in the first 1024 bytes; so do we.
HEADER_WINDOW = 1024

# What a malformed file can make pypdf raise. Beyond its own errors, its parser lets
# lookups, conversions and decompression fail with builtin exceptions on bad input.
_DAMAGED: tuple[type[BaseException], ...] = (
    pdf_errors.PyPdfError,
    NotImplementedError,  # an unsupported filter or encryption variant
    ValueError,  # includes UnicodeDecodeError
    LookupError,  # KeyError, IndexError
    TypeError,
    AttributeError,  # e.g. a null object where a dictionary belongs
    ArithmeticError,
    RecursionError,  # a cyclic page tree or deeply nested objects
    zlib.error,
    struct.error,
)


@attrs.frozen
class _Opened:
    reader: pypdf.PdfReader
    pages: int
    metadata: dict[str, str]


class OfflinePdfAnalyzer:
    """`Analyze` without a model: every page's text, the document's metadata, no network.

    Refuses, permanently: a missing blob (`not_found`), a file that is not a readable PDF
    (`corrupt_document`), any encrypted PDF, even one that opens with an empty password
    (`encrypted_document`: its owner restricted it, and we never decrypt on anyone's
    behalf), and more than `max_pages` pages (`too_many_pages`). A page's text is cut
    at `max_chars_per_page` characters.
    """

    def __init__(
        self,
        blobs: ports.BlobStore,
        *,
        max_pages: int = 2000,
        max_chars_per_page: int = 100_000,
    ) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {max_pages}")
        if max_chars_per_page < 1:
            raise ValueError(f"max_chars_per_page must be at least 1, got {max_chars_per_page}")
        self._blobs = blobs
        self._max_pages = max_pages
        self._max_chars = max_chars_per_page

    async def analyze(
        self, effect: effects.Analyze, progress: ports.Progress
    ) -> Result[effects.Analysis, errors.Error]:
        try:
            data = await self._blobs.read(effect.key)
        except ports.BlobNotFound:
            return Failure(
                errors.permanent("not_found", f"no blob at {effect.key!r}", key=effect.key)
            )
        opened = await asyncio.to_thread(_guarded, _open, data)
        match opened:
            case Failure(_):
                return opened
            case Success(document):
                pass
        if document.pages > self._max_pages:
            return Failure(
                errors.permanent(
                    "too_many_pages",
                    f"the document has {document.pages} pages; at most {self._max_pages} "
                    "can be analysed",
                    pages=document.pages,
                    max_pages=self._max_pages,
                )
            )
        pages: list[dict[str, Any]] = []
        for number in range(1, document.pages + 1):
            extracted = await asyncio.to_thread(_guarded, _page_text, document.reader, number)
            match extracted:
                case Failure(_):
                    return extracted
                case Success(text):
                    pass
            kept = text[: self._max_chars]
            pages.append(
                {
                    "page": number,
                    "text": kept,
                    "characters": len(kept),
                    "truncated": len(kept) < len(text),
                }
            )
            await progress(number, document.pages, f"page {number} of {document.pages}")
        return Success(self._analysis(effect, document, pages))

    def _analysis(
        self, effect: effects.Analyze, document: _Opened, pages: list[dict[str, Any]]
    ) -> effects.Analysis:
        whole = "\n\n".join(page["text"] for page in pages)
        note = NOTE + (SCHEMA_NOTE if effect.schema is not None else "")
        return effects.Analysis(
            model=MODEL,
            pages=document.pages,
            document={"metadata": document.metadata},
            output={
                "pages": pages,
                "text": whole[:OVERVIEW_CHARS],
                "instructions": effect.instructions,
                "note": note,
            },
            usage={"pages": document.pages, "characters": sum(p["characters"] for p in pages)},
        )


# -- blocking parts, run in threads ------------------------------------------------


def _guarded(work: Callable[..., Result[T, errors.Error]], *args: Any) -> Result[T, errors.Error]:
    """`work(*args)`, with whatever a damaged file makes pypdf raise turned into a value."""
    try:
        return work(*args)
    except pdf_errors.FileNotDecryptedError:
        return Failure(_encrypted())
    except pdf_errors.DependencyError as e:  # a codec this installation lacks, not bad input
        return Failure(
            errors.permanent("unsupported", f"the document needs an optional pypdf dependency: {e}")
        )
    except _DAMAGED as e:
        return Failure(_corrupt(str(e) or "pypdf could not parse it", exception=type(e).__name__))


def _open(data: bytes) -> Result[_Opened, errors.Error]:
    if not data:
        return Failure(_corrupt("the file is empty"))
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        return Failure(_corrupt("it has no %PDF- header, so it is not a PDF file"))
    # Lenient, like every PDF viewer: strict mode rejects the many real files with small,
    # repairable defects. Files pypdf cannot repair still fail, below or page by page.
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    except _DAMAGED as e:
        if b"%%EOF" in data[-HEADER_WINDOW:]:
            raise
        reason = f"it looks truncated, with no %%EOF marker at its end ({e})"
        return Failure(_corrupt(reason, exception=type(e).__name__))
    if reader.is_encrypted:
        return Failure(_encrypted())
    pages = len(reader.pages)
    if pages == 0:
        return Failure(_corrupt("it has no pages"))
    return Success(_Opened(reader=reader, pages=pages, metadata=_metadata(reader)))


def _page_text(reader: pypdf.PdfReader, number: int) -> Result[str, errors.Error]:
    return Success(_clean(reader.pages[number - 1].extract_text()))


def _metadata(reader: pypdf.PdfReader) -> dict[str, str]:
    """The document information dictionary's fields that are present; best effort, since
    a damaged info dictionary should not cost the reader the document's text."""
    try:
        info = reader.metadata
        if info is None:
            return {}
        fields: dict[str, str | datetime | None] = {
            "title": info.title,
            "author": info.author,
            "subject": info.subject,
            "creator": info.creator,
            "producer": info.producer,
            "creationDate": _date(lambda: info.creation_date, info.creation_date_raw),
            "modificationDate": _date(lambda: info.modification_date, info.modification_date_raw),
        }
    except _DAMAGED:
        return {}
    return {
        name: value.isoformat() if isinstance(value, datetime) else _clean(value)
        for name, value in fields.items()
        if value
    }


def _date(parsed: Callable[[], datetime | None], raw: object) -> datetime | str | None:
    """The parsed date, or the raw text when it does not follow the PDF date format."""
    try:
        return parsed()
    except ValueError:
        return str(raw) if isinstance(raw, str) else None


def _clean(text: str) -> str:
    # Bad ToUnicode maps can yield lone surrogates, which UTF-8 JSON cannot encode.
    return str(text).encode("utf-8", "replace").decode("utf-8")


def _corrupt(reason: str, **context: Any) -> errors.Error:
    return errors.permanent(
        "corrupt_document", f"the document is not a readable PDF: {reason}", **context
    )


def _encrypted() -> errors.Error:
    return errors.permanent(
        "encrypted_document",
        "the document is an encrypted PDF; remove its password and protection, then upload "
        "it again",
    )
