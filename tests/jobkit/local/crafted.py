"""Crafted PDFs that cost far more to parse than their size suggests, built byte by byte."""

from __future__ import annotations

import io
import zlib

# `(a) Tj ` is 7 bytes: repeated, it compresses about 700 to 1, and every 7 bytes are two
# tokens for the content parser and a glyph for the text extractor.
SHOW = b"(a) Tj "
# `q Q ` (save and restore the graphics state) parses to nothing: all memory, little text.
NOTHING = b"q Q "


def _file(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def shared_stream(pages: int, content: bytes) -> bytes:
    """`pages` pages whose one content stream, compressed once, is `content`."""
    packed = zlib.compress(content, 9)
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed)
    kids = b" ".join(b"%d 0 R" % (5 + page) for page in range(pages))
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
        b" /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    )
    return _file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream + packed + b"\nendstream",
            *[page] * pages,
        ]
    )


def many_pages_one_stream() -> bytes:
    """About 12 KB: 20 pages sharing one 8 MB content stream of text to show."""
    return shared_stream(20, b"BT /F1 12 Tf " + SHOW * (8_000_000 // len(SHOW)) + b" ET")


def one_huge_stream() -> bytes:
    """About 70 KB: one page whose content stream is 70 MB."""
    return shared_stream(1, NOTHING * (70_000_000 // len(NOTHING)))
