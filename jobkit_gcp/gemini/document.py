"""What must hold of a PDF before Gemini sees it: readable, not locked, few enough pages.

Checked here, before any call, so that a document the model would refuse fails at once
with a named, permanent error and costs nothing. pypdf only counts pages and reads the
encryption dictionary; it is CPU-bound, so `inspect` runs in a thread.
"""

from __future__ import annotations

import io
import struct
import zlib

import attrs
import pypdf
from pypdf import errors as pdf_errors
from returns.result import Failure, Result, Success

from jobkit import errors

HEADER_WINDOW = 1024  # a header anywhere in the first KiB, as Acrobat accepts

# What a malformed file makes pypdf raise, beyond its own errors.
_DAMAGED: tuple[type[BaseException], ...] = (
    pdf_errors.PyPdfError,
    NotImplementedError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    ArithmeticError,
    RecursionError,
    zlib.error,
    struct.error,
)


@attrs.frozen(kw_only=True)
class Facts:
    pages: int


def inspect(data: bytes, *, max_pages: int) -> Result[Facts, errors.Error]:
    """The document's page count, or why Gemini must not be asked about it."""
    if not data:
        return Failure(_corrupt("the file is empty"))
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        return Failure(_corrupt("it has no %PDF- header, so it is not a PDF file"))
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return Failure(_locked())
        pages = len(reader.pages)
    except pdf_errors.FileNotDecryptedError:
        return Failure(_locked())
    except pdf_errors.DependencyError as e:  # a codec this installation lacks
        return Failure(
            errors.permanent("unsupported", f"the document needs an optional pypdf codec: {e}")
        )
    except _DAMAGED as e:
        return Failure(_corrupt(str(e) or "pypdf could not parse it", exception=type(e).__name__))
    if pages == 0:
        return Failure(_corrupt("it has no pages"))
    if pages > max_pages:
        return Failure(
            errors.permanent(
                "too_many_pages",
                f"the document has {pages} pages; the model reads at most {max_pages}",
                pages=pages,
                max_pages=max_pages,
            )
        )
    return Success(Facts(pages=pages))


def _corrupt(reason: str, **context: str) -> errors.Error:
    return errors.permanent(
        "corrupt_document", f"the document is not a readable PDF: {reason}", **context
    )


def _locked() -> errors.Error:
    return errors.permanent(
        "encrypted_document",
        "the document is a password-protected PDF; remove its password, then upload it again",
    )
