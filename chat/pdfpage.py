"""A cited sentence on its PDF page, for the source viewer: PDFium (pypdfium2,
which parsing already uses) finds the sentence in the page's text layer and
gives the boxes of its characters, in PDF points, for the viewer (PDF.js) to
draw over the page; or it renders the page as a PNG with those boxes painted
in translucent yellow (the viewer's fallback). No Django here."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCALE = 1.5  # 108 dpi: readable beside the chat, about 150 KB a page
MAX_SIDE = 2400  # pixels: a poster-sized page is drawn smaller, not as a gigabyte bitmap
HIGHLIGHT = (255, 214, 0, 90)
MIN_WORDS = 4
# PDFium is not thread-safe and the web server may be.
_lock = threading.Lock()


class PageError(Exception):
    """The file cannot be rendered or has no such page."""


@contextmanager
def _page(path: Path, page_number: int) -> Iterator:
    """Page `page_number` (1-based) of the PDF at `path`, under the lock, closed after."""
    import pypdfium2 as pdfium

    with _lock:
        try:
            document = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise PageError(f"The PDF could not be read ({exc}).") from None
        try:
            if not 1 <= page_number <= len(document):
                raise PageError(f"The PDF has no page {page_number}.")
            page = document[page_number - 1]
            try:
                yield page
            finally:
                page.close()
        finally:
            document.close()


def _sentence_boxes(page, sentence: str) -> list[tuple[float, float, float, float]]:
    textpage = page.get_textpage()
    try:
        return _boxes(textpage, sentence)
    finally:
        textpage.close()


def sentence_boxes(path: Path, page_number: int, sentence: str) -> dict:
    """The page's size and the boxes (left, bottom, right, top in PDF points,
    origin at the page's lower left) of `sentence` on it, as found by
    render_page; no boxes when the text layer does not hold it."""
    with _page(path, page_number) as page:
        width, height = page.get_size()
        boxes = _sentence_boxes(page, sentence)
    return {
        "page": page_number,
        "width": round(width, 2),
        "height": round(height, 2),
        "boxes": [[round(v, 2) for v in box] for box in boxes],
    }


def render_page(path: Path, page_number: int, sentence: str = "") -> bytes:
    """PNG bytes of page `page_number` (1-based) of the PDF at `path`, with
    `sentence` (or, if the text layer breaks it differently, its longest
    leading run of words that is found) highlighted."""
    from PIL import Image, ImageDraw

    with _page(path, page_number) as page:
        width, height = page.get_size()
        scale = min(SCALE, MAX_SIDE / max(width, height, 1))
        image = page.render(scale=scale).to_pil().convert("RGBA")
        boxes = _sentence_boxes(page, sentence)
    if boxes:
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for left, bottom, right, top in boxes:
            draw.rectangle(
                [left * scale - 1, (height - top) * scale - 1, right * scale + 1, (height - bottom) * scale + 1],
                fill=HIGHLIGHT,
            )
        image = Image.alpha_composite(image, overlay)
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_thumbnail(path: Path, width: int) -> bytes:
    """PNG bytes of the first page of the PDF at `path`, `width` pixels wide
    (a page taller than three widths is cut at that)."""
    with _page(path, 1) as page:
        page_width, page_height = page.get_size()
        scale = width / max(page_width, 1)
        image = page.render(scale=min(scale, MAX_SIDE / max(page_width, page_height, 1))).to_pil().convert("RGB")
    if image.width != width:  # PDFium rounds the scaled size
        image = image.resize((width, max(1, round(image.height * width / image.width))))
    image = image.crop((0, 0, width, min(image.height, 3 * width)))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _boxes(textpage, sentence: str) -> list[tuple[float, float, float, float]]:
    """The rectangles (PDF points) of the first occurrence of `sentence`,
    trying shorter leading runs of its words when the whole is not found
    (hyphenation, ligatures or a sentence that runs onto the next page)."""
    words = re.sub(r"[*_`#>|]", " ", sentence).split()  # Markdown the parser added (tables, headings)
    if not words:
        return []
    for count in range(len(words), min(MIN_WORDS, len(words)) - 1, -1):
        searcher = textpage.search(" ".join(words[:count]), match_case=False)
        try:
            found = searcher.get_next()
        finally:
            searcher.close()
        if found:
            index, length = found
            return [textpage.get_rect(i) for i in range(textpage.count_rects(index, length))]
    return []
