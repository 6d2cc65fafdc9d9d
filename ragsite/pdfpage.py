"""A PDF page as a PNG with a sentence highlighted, for the source viewer:
PDFium (pypdfium2, which parsing already uses) renders the page and finds
the sentence in its text layer; the boxes of its characters are painted over
in translucent yellow. No Django here."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

SCALE = 1.5  # 108 dpi: readable beside the chat, about 150 KB a page
MAX_SIDE = 2400  # pixels: a poster-sized page is drawn smaller, not as a gigabyte bitmap
HIGHLIGHT = (255, 214, 0, 90)
MIN_WORDS = 4
# PDFium is not thread-safe and the web server may be.
_lock = threading.Lock()


class PageError(Exception):
    """The file cannot be rendered or has no such page."""


def render_page(path: Path, page_number: int, sentence: str = "") -> bytes:
    """PNG bytes of page `page_number` (1-based) of the PDF at `path`, with
    `sentence` (or, if the text layer breaks it differently, its longest
    leading run of words that is found) highlighted."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

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
                width, height = page.get_size()
                scale = min(SCALE, MAX_SIDE / max(width, height, 1))
                image = page.render(scale=scale).to_pil().convert("RGBA")
                textpage = page.get_textpage()
                try:
                    boxes = _boxes(textpage, sentence)
                finally:
                    textpage.close()
            finally:
                page.close()
        finally:
            document.close()
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
