"""An offline `ports.Analyzer`: extracts a PDF's text and metadata with pypdf, page by page.

Theory of operation. The document is read from the blob store once, as bytes, and parsed by
one call, `_extract`, run by a `bounded.Runner`: in the service, a `bounded.Pool` of child
processes with CPU, memory and time limits, so no pypdf work happens in the service's
process and a document that costs too much fails as `document_too_complex`; in a library
that only reads its own files, by default, a thread of its own process (`bounded.InThread`).
The call opens the document, checks it, then extracts each page's text, reporting progress
after each page; the runner passes the reports to the worker as they come.

The call also runs under pypdf's own limits, tightened (`PYPDF_LIMITS`): no decompressed
stream over `MAX_STREAM_BYTES`. pypdf refuses what passes one of them with
`LimitReachedError`, which is `document_too_complex` too.

This module is the boundary where pypdf's exceptions become values: a damaged file makes
pypdf raise its own errors, or plain `ValueError`, `KeyError` and friends from deep inside
the parser, and none of them may reach the worker. pypdf reports the problems it works
around through `logging` (and uses `warnings` only for deprecated calls, which are ours to
fix), so nothing here touches the process-wide, thread-unsafe warnings filters.
"""

from __future__ import annotations

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
from jobkit.local import bounded

__all__ = [
    "MAX_STREAM_BYTES",
    "MODEL",
    "OVERVIEW_CHARS",
    "OfflinePdfAnalyzer",
    "page_count",
]

T = TypeVar("T")

MODEL = "offline-pypdf"
OVERVIEW_CHARS = 2_000
NOTE = "offline analysis extracts text; it does not follow instructions"
SCHEMA_NOTE = "; it ignores the requested schema"
# Acrobat accepts a header anywhere in the first 1024 bytes; so do we.
HEADER_WINDOW = 1024
# A page's content stream is rarely over a few MB, even for dense vector drawings; pypdf's
# default (75 MB per stream) lets a 70 KB upload ask for 70 MB, and a few such streams
# shared by many pages ask for it again and again.
MAX_STREAM_BYTES = 32 * 1024 * 1024
PYPDF_LIMITS: dict[str, int] = dict.fromkeys(
    (
        "maximum_declared_stream_length",
        "array_based_stream_maximum_output_length",
        "zlib_maximum_output_length",
        "lzw_maximum_output_length",
        "run_length_maximum_output_length",
        "brotli_maximum_output_length",
    ),
    MAX_STREAM_BYTES,
)

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


@attrs.frozen
class _Extracted:
    """What `_extract` sends back: plain data, so it crosses a process boundary."""

    pages: int
    metadata: dict[str, str]
    texts: list[dict[str, Any]]


class OfflinePdfAnalyzer:
    """`Analyze` without a model: every page's text, the document's metadata, no network.

    Refuses, permanently: a missing blob (`not_found`), a file that is not a readable PDF
    (`corrupt_document`), any encrypted PDF, even one that opens with an empty password
    (`encrypted_document`: its owner restricted it, and we never decrypt on anyone's
    behalf), more than `max_pages` pages (`too_many_pages`), and a document past a limit of
    `runner` or pypdf (`document_too_complex`). A page's text is cut at
    `max_chars_per_page` characters.

    `runner` parses: give the service's `bounded.Pool` for documents from anyone; the
    default, `bounded.InThread()`, has no limits and suits only documents you trust.
    """

    def __init__(
        self,
        blobs: ports.BlobStore,
        *,
        runner: bounded.Runner | None = None,
        max_pages: int = 2000,
        max_chars_per_page: int = 100_000,
    ) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {max_pages}")
        if max_chars_per_page < 1:
            raise ValueError(f"max_chars_per_page must be at least 1, got {max_chars_per_page}")
        self._blobs = blobs
        self._runner: bounded.Runner = runner or bounded.InThread()
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
        ran = await self._runner.run(
            _extract, data, self._max_pages, self._max_chars, progress=progress
        )
        match ran:
            case Success(Success(extracted)):
                return Success(self._analysis(effect, extracted))
            case Success(Failure(err)) | Failure(err):
                return Failure(err)
        raise AssertionError(f"unexpected outcome {ran!r}")

    def _analysis(self, effect: effects.Analyze, document: _Extracted) -> effects.Analysis:
        pages = document.texts
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


# -- the parsing, run by a bounded runner (a child process, or a thread) ---------------


def _extract(
    report: bounded.Report, data: bytes, max_pages: int, max_chars: int
) -> Result[_Extracted, errors.Error]:
    """Open the document, check it, and extract every page's text, reporting each page."""
    with pypdf.apply_configuration(None, **PYPDF_LIMITS):
        opened = _guarded(_open, data)
        match opened:
            case Failure(_):
                return opened
            case Success(document):
                pass
        if document.pages > max_pages:
            return Failure(_too_many(document.pages, max_pages))
        texts: list[dict[str, Any]] = []
        for number in range(1, document.pages + 1):
            extracted = _guarded(_page_text, document.reader, number)
            match extracted:
                case Failure(_):
                    return extracted
                case Success(text):
                    pass
            kept = text[:max_chars]
            texts.append(
                {
                    "page": number,
                    "text": kept,
                    "characters": len(kept),
                    "truncated": len(kept) < len(text),
                }
            )
            report(number, document.pages, f"page {number} of {document.pages}")
        return Success(_Extracted(pages=document.pages, metadata=document.metadata, texts=texts))


def _pages(report: bounded.Report, data: bytes) -> Result[int, errors.Error]:
    with pypdf.apply_configuration(None, **PYPDF_LIMITS):
        return _guarded(_open, data).map(lambda document: document.pages)


async def page_count(runner: bounded.Runner, data: bytes) -> Result[int, errors.Error]:
    """How many pages `data` has, parsed by `runner`: for an analyzer that sends the document
    elsewhere (Gemini) and checks it first. Fails as `_extract` does (`corrupt_document`,
    `encrypted_document`, `document_too_complex`)."""
    ran = await runner.run(_pages, data)
    match ran:
        case Success(Success(pages)):
            return Success(pages)
        case Success(Failure(err)) | Failure(err):
            return Failure(err)
    raise AssertionError(f"unexpected outcome {ran!r}")


def _too_many(pages: int, max_pages: int) -> errors.Error:
    return errors.permanent(
        "too_many_pages",
        f"the document has {pages} pages; at most {max_pages} can be analysed",
        pages=pages,
        max_pages=max_pages,
    )


def _guarded(work: Callable[..., Result[T, errors.Error]], *args: Any) -> Result[T, errors.Error]:
    """`work(*args)`, with whatever a damaged file makes pypdf raise turned into a value."""
    try:
        return work(*args)
    except pdf_errors.LimitReachedError as e:  # one of pypdf's own bounds: the cost, not damage
        return Failure(
            errors.permanent(
                bounded.TOO_COMPLEX,
                f"the document is too complex to process: {e}",
                limit="pypdf",
            )
        )
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
