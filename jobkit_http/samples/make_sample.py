"""Write `sample.pdf`: a small three-page text PDF built by hand, with the standard library only.

Run `python -m jobkit_http.samples.make_sample` to regenerate it. The output is deterministic
(no clock, no compression), so the committed file always equals `build()`; a test checks it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

TITLE = "A Field Guide to Quiet Places"
AUTHOR = "Ada Example"
SUBJECT = "A sample document for jobkit's offline PDF analyzer"
CREATOR = "jobkit_http.samples.make_sample"
PRODUCER = "jobkit hand-written PDF"
CREATION_DATE = "D:20240301120000Z"

# Each page's heading and paragraphs; each page has words of its own for the tests to look for.
PAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Chapter 1: The Lighthouse",
        (
            "The lighthouse stands on a granite headland where the wind never quite stops. "
            "Its keeper climbs one hundred and twelve steps each evening to light the lamp.",
            "Ships passing in the fog listen for the horn and watch for the slow white beam "
            "that sweeps the water every nine seconds.",
            "In winter the keeper writes letters, mends nets and counts the gulls.",
        ),
    ),
    (
        "Chapter 2: The Orchard",
        (
            "Behind the village lies an orchard of old apple trees, planted in crooked rows "
            "by a family of beekeepers three generations ago.",
            "In spring the blossom draws the bees; in autumn the cider press runs from dawn "
            "until the lanterns are lit.",
            "Nobody remembers who built the stone wall, but everybody sits on it.",
        ),
    ),
    (
        "Chapter 3: The Glacier",
        (
            "High above the valley a glacier moves a few centimetres a day, grinding the "
            "mountain into fine grey flour that colours the river.",
            "Walkers cross the moraine at first light, before the sun softens the snow bridges "
            "over the crevasses.",
            "At the hut, the warden keeps a logbook of every party that reaches the pass.",
        ),
    ),
)

_LEFT, _TOP, _LEADING, _WIDTH = 72, 720, 16, 80


def _string(text: str) -> bytes:
    """A PDF literal string; the sample keeps to ASCII, which WinAnsiEncoding shows as is."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("ascii") + b")"


def _content(heading: str, paragraphs: tuple[str, ...], number: int) -> bytes:
    ops = [b"BT", b"/F2 18 Tf", f"{_LEFT} {_TOP} Td".encode(), _string(heading) + b" Tj"]
    ops += [b"/F1 11 Tf", f"{_LEADING} TL".encode(), b"T*"]
    for paragraph in paragraphs:
        ops += [b"T*"]
        ops += [_string(line) + b" Tj T*" for line in textwrap.wrap(paragraph, _WIDTH)]
    ops += [b"ET", b"BT", b"/F1 9 Tf", f"{_LEFT} 48 Td".encode()]
    ops += [_string(f"Page {number} of {len(PAGES)}") + b" Tj", b"ET"]
    return b"\n".join(ops) + b"\n"


def build() -> bytes:
    """The sample PDF's bytes: catalog, page tree, two fonts, info, then a page and its content
    stream per page, an xref table with exact offsets, and the trailer."""
    first_page = 6
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(len(PAGES)))
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>"
    info = b"<< /Title %s /Author %s /Subject %s /Creator %s /Producer %s /CreationDate %s >>" % (
        _string(TITLE),
        _string(AUTHOR),
        _string(SUBJECT),
        _string(CREATOR),
        _string(PRODUCER),
        _string(CREATION_DATE),
    )
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(PAGES)} >>".encode(),
        font.format("Helvetica").encode(),
        font.format("Helvetica-Bold").encode(),
        info,
    ]
    for number, (heading, paragraphs) in enumerate(PAGES, start=1):
        content_ref = first_page + 2 * (number - 1) + 1
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
            b"/Contents %d 0 R >>" % content_ref
        )
        stream = _content(heading, paragraphs, number)
        objects.append(b"<< /Length %d >>\nstream\n%sendstream" % (len(stream), stream))

    # A binary comment after the header tells transfer tools the file is not text.
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def main() -> None:
    target = Path(__file__).with_name("sample.pdf")
    target.write_bytes(build())


if __name__ == "__main__":
    main()
