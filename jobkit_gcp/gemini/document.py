"""What must hold of a PDF before Gemini sees it: readable, not locked, few enough pages.

Checked before any call, so that a document the model would refuse fails at once with a
named, permanent error and costs nothing. Parsing an untrusted PDF can cost far more than
its size suggests, so the page count is taken by a bounded runner
(`jobkit.local.bounded.Pool` in the service: a child process under CPU and memory limits),
through the offline analyzer's own parser (`offline.page_count`): a document over a limit
fails `document_too_complex`, and an encrypted one `encrypted_document`.
"""

from __future__ import annotations

import attrs
from returns.result import Failure, Result, Success

from jobkit import errors
from jobkit.local import bounded, offline


@attrs.frozen(kw_only=True)
class Facts:
    pages: int


async def inspect(
    runner: bounded.Runner, data: bytes, *, max_pages: int
) -> Result[Facts, errors.Error]:
    """The document's page count, or why Gemini must not be asked about it."""
    match await offline.page_count(runner, data):
        case Failure(_) as refused:
            return refused
        case Success(pages) if pages > max_pages:
            return Failure(
                errors.permanent(
                    "too_many_pages",
                    f"the document has {pages} pages; the model reads at most {max_pages}",
                    pages=pages,
                    max_pages=max_pages,
                )
            )
        case Success(pages):
            return Success(Facts(pages=pages))
    raise AssertionError("unreachable")
