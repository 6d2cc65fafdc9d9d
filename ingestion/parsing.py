"""Turn a stored file into text pages. Pure: no Django.

Every failure is a `ParseError` whose message a user can act on, or a
`LimitExceeded` (ingestion/limits.py): the parsers report pages and text to a
`Guard` page by page or paragraph by paragraph, and stop at the first limit
passed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ingestion import docx_reader, html_structure, ocr
from ingestion.limits import Guard
from ingestion.ocr import IMAGE_SUFFIXES, OcrError, OcrOptions
from ingestion.tables import cell_text, markdown_table

log = logging.getLogger(__name__)

PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = {".txt", ".text"}
TEXT_FORMAT_SUFFIXES = PDF_SUFFIXES | DOCX_SUFFIXES | HTML_SUFFIXES | MARKDOWN_SUFFIXES | TEXT_SUFFIXES
TEXT_FORMAT_DESCRIPTION = "PDF, Word (.docx), HTML, Markdown or plain text"
SUPPORTED_SUFFIXES = TEXT_FORMAT_SUFFIXES | IMAGE_SUFFIXES
SUPPORTED_DESCRIPTION = f"PDF, Word (.docx), HTML, Markdown, plain text or {ocr.IMAGE_DESCRIPTION}"
# Seconds OCR may take on one page when no time limit is set.
OCR_PAGE_SECONDS = 600


class ParseError(Exception):
    """A document that cannot be read; the message is shown to the user."""


@dataclass(frozen=True)
class Page:
    number: int | None  # 1-based for paged formats, None otherwise
    text: str


@dataclass(frozen=True)
class OcrPage:
    """A page read by OCR: how sure Tesseract was (0-100) and how many words it found."""

    number: int
    confidence: float
    words: int


@dataclass(frozen=True)
class ParsedDocument:
    kind: str  # "pdf" | "docx" | "html" | "markdown" | "text" | "image"
    pages: list[Page] = field(default_factory=list)
    title: str = ""
    # The pages read by OCR; when there are any, the PDF with their text
    # layer was written to parse_file's `searchable` path.
    ocr_pages: list[OcrPage] = field(default_factory=list)


def is_supported(filename: str) -> bool:
    return Path(filename).suffix.lower() in SUPPORTED_SUFFIXES


def readable_types(options: OcrOptions | None = None) -> tuple[set[str], str]:
    """The suffixes this machine reads, and their description for the upload
    doors: images only where OCR is available (`options`)."""
    if ocr.missing(options or OcrOptions()):
        return TEXT_FORMAT_SUFFIXES, TEXT_FORMAT_DESCRIPTION
    return SUPPORTED_SUFFIXES, SUPPORTED_DESCRIPTION


def unsupported_reason(filename: str, options: OcrOptions | None = None) -> str:
    """Why a file of this name cannot be read ("" when it can): one message for
    the upload doors, which refuse it at once, and for parse_file. An image is
    read by OCR, so it is refused where OCR is unavailable (`options`)."""
    suffix = Path(filename).suffix.lower()
    if suffix in IMAGE_SUFFIXES and (reason := ocr.missing(options or OcrOptions())):
        return f"An image is read by OCR. {reason}"
    if suffix in SUPPORTED_SUFFIXES:
        return ""
    return f"Unsupported file type {suffix or '(no extension)'}. Upload {readable_types(options)[1]}."


def parse_file(
    path: str | Path,
    filename: str,
    guard: Guard | None = None,
    *,
    options: OcrOptions | None = None,
    searchable: str | Path | None = None,
) -> ParsedDocument:
    """Parse the file at `path`; `filename` (the user's name for it) picks the format.
    `guard` (no limits when None) is told of the pages and text as they are read.
    Scanned PDF pages and images are read by OCR (`options`); the PDF with the
    text layer OCR gave them is written to `searchable` (when given)."""
    guard = guard or Guard()
    options = options or OcrOptions()
    if reason := unsupported_reason(filename, options):
        raise ParseError(reason)
    suffix = Path(filename).suffix.lower()
    path = Path(path)
    if path.stat().st_size == 0:
        raise ParseError("The file is empty (0 bytes).")
    if suffix in PDF_SUFFIXES:
        parsed = _parse_pdf(path, guard, options, searchable)
    elif suffix in IMAGE_SUFFIXES:
        parsed = _parse_image(path, guard, options, searchable)
    elif suffix in DOCX_SUFFIXES:
        parsed = _parse_docx(path, guard)
    elif suffix in HTML_SUFFIXES:
        parsed = _parse_html(path, guard)
    else:
        kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
        text = decode_text(path.read_bytes())
        guard.add_text(len(text))
        title = _markdown_title(text) if kind == "markdown" else ""
        parsed = ParsedDocument(kind=kind, pages=[Page(None, text)], title=title)
    if not any(page.text.strip() for page in parsed.pages):
        if parsed.kind == "pdf" and not parsed.ocr_pages:
            reason = ocr.missing(options)
            raise ParseError(
                f"The PDF has no text layer (it may be scanned images); no text could be extracted. {reason}".strip()
            )
        if parsed.ocr_pages:
            raise ParseError("OCR found no text on the pages; check that they are scans of text, the right way up.")
        raise ParseError("The file contains no text.")
    return parsed


def decode_text(data: bytes) -> str:
    """Text in any common encoding: BOMs, UTF-8, else the best guess of charset-normalizer."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _normalise(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise ParseError("The file claims to be UTF-16 text but is not valid UTF-16.") from None
    if b"\x00" in data[:8192]:
        raise ParseError("The file looks binary, not text; check that the file type is right.")
    try:
        return _normalise(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        pass
    return _normalise(data.decode(_guess_encoding(data)))


def _guess_encoding(data: bytes) -> str:
    """charset-normalizer's guess, tilted to Windows-1252 when it fits as well as
    the best (short Western texts fit several code pages equally), and Latin-1
    when nothing fits coherently (every byte string is valid Latin-1)."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return "latin-1"
    least_chaos = min(m.chaos for m in matches)
    tied = [m.encoding for m in matches if m.chaos == least_chaos]
    if "cp1252" in tied:
        return "cp1252"
    best = matches[0]
    return best.encoding if best.coherence > 0 else "latin-1"


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _markdown_title(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# "):
            return stripped[2:].strip()
    return ""


def _parse_pdf(path: Path, guard: Guard, options: OcrOptions, searchable) -> ParsedDocument:
    """The text layer of every page, via PDFium (pypdfium2): Chrome's PDF engine,
    about 3x faster than pure-Python parsers on text extraction. Scanned pages
    are read by OCR (ingestion/ocr.py) when this machine can."""
    import pypdfium2 as pdfium

    with path.open("rb") as handle:
        if not handle.read(1024).lstrip().startswith(b"%PDF"):
            raise ParseError("The file is not a PDF (it has no PDF header); it may be corrupt or mislabelled.")
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ParseError("The PDF is encrypted with a password; upload an unprotected copy.") from None
        log.info("PDF parse failure for %s: %r", path, exc)
        raise ParseError(f"The PDF is damaged and could not be read ({str(exc).rstrip('.')}).") from None
    try:
        guard.pages(len(document))  # known before any page is read
        pages, ruled, scanned = [], [], []
        for index in range(len(document)):
            page = document[index]
            try:
                pages.append(Page(index + 1, _page_text(page)))
                guard.add_text(len(pages[-1].text))
                # Drawn lines and boxes may be a table's rules: look closer below.
                if sum(1 for obj in page.get_objects(max_depth=1) if obj.type == pdfium.raw.FPDF_PAGEOBJ_PATH) >= 4:
                    ruled.append(index)
                if ocr.needs_ocr(pages[-1].text, *page.get_size(), ocr.image_cover(page), options):
                    scanned.append(index)
            finally:
                page.close()
        title = (document.get_metadata_dict(skip_empty=True).get("Title") or "").strip()
        if not pages:
            raise ParseError("The PDF has no pages.")
        read = []
        if scanned and not ocr.missing(options):
            read = _read_by_ocr(document, scanned, pages, guard, options, searchable)
        elif scanned:
            log.info("%s: %d scanned page(s) not read: %s", path, len(scanned), ocr.missing(options))
    except pdfium.PdfiumError as exc:
        raise ParseError(f"The PDF is damaged and could not be read ({str(exc).rstrip('.')}).") from None
    finally:
        document.close()
    for index, text in _pdf_tables(path, [i for i in ruled if i not in scanned], guard).items():
        pages[index] = Page(index + 1, text)
    return ParsedDocument(kind="pdf", pages=pages, title=title, ocr_pages=read)


def _parse_image(path: Path, guard: Guard, options: OcrOptions, searchable) -> ParsedDocument:
    """A PNG, JPEG or TIFF (every frame a page), read by OCR: the frames
    become the pages of a PDF that gains their text layer."""
    import pypdfium2 as pdfium

    try:
        data, count = ocr.image_to_pdf(path, options, guard)
    except OcrError as exc:
        raise ParseError(str(exc)) from None
    document = pdfium.PdfDocument(data)
    try:
        pages = [Page(index + 1, "") for index in range(count)]
        read = _read_by_ocr(document, list(range(count)), pages, guard, options, searchable)
    finally:
        document.close()
    return ParsedDocument(kind="image", pages=pages, ocr_pages=read)


def _read_by_ocr(document, indexes: list[int], pages: list[Page], guard: Guard, options: OcrOptions, searchable):
    """OCR the pages `indexes` of the PDFium `document` into its text layer,
    replace their text in `pages` with what the layer holds now, and save the
    document to `searchable`. Returns what OCR said of each page."""
    read = []
    for index in indexes:
        guard.step()
        try:
            reading = ocr.read_into(document, index, options, guard.remaining(OCR_PAGE_SECONDS))
        except TimeoutError:
            raise guard.timed_out() from None
        except OcrError as exc:
            raise ParseError(f"Page {index + 1}: {exc}") from None
        page = document[index]
        try:
            text = _page_text(page)
        finally:
            page.close()
        guard.add_text(max(0, len(text) - len(pages[index].text)))
        pages[index] = Page(index + 1, text)
        read.append(OcrPage(index + 1, reading.confidence, reading.words))
    if read and searchable:
        document.save(str(searchable))
    return read


def _page_text(page) -> str:
    """A PDF page's text layer as text. Spaces at line ends are dropped: an
    OCR text layer ends every line with one (Tesseract's word spacing), which
    kept the sentence splitter from joining a sentence wrapped across lines
    (bench/ocr.py: quotes cut at the line end on scans only)."""
    textpage = page.get_textpage()
    try:
        return _LINE_END_SPACES.sub("\n", _normalise(_clean(textpage.get_text_range()))).rstrip(" \t")
    finally:
        textpage.close()


_LINE_END_SPACES = re.compile(r"[ \t]+\n")


def _pdf_tables(path: Path, candidates: list[int], guard: Guard) -> dict[int, str]:
    """Pages with ruled tables, as text with each table in Markdown (header row
    first) at its place on the page, so the chunker keeps tables whole or
    repeats their header. pdfplumber finds the tables; only pages with drawn
    lines are opened with it (it is far slower than PDFium)."""
    if not candidates:
        return {}
    import pdfplumber

    found = {}
    try:
        pdf = pdfplumber.open(str(path))
    except Exception as exc:  # table detection is a refinement: keep PDFium's text
        log.info("Table detection failed for %s: %r", path, exc)
        return {}
    with pdf:
        for index in candidates:
            guard.step()  # outside the try below: a limit or a cancel stops the parse
            page = pdf.pages[index]
            try:
                text = _page_with_tables(page)
            except Exception as exc:
                log.info("Table detection failed for %s: %r", path, exc)
                return {}
            finally:
                page.close()  # pdfplumber keeps every page's objects otherwise (500 MB for 1,000 pages)
            if text is not None:
                found[index] = text
    return found


def _page_with_tables(page) -> str | None:
    tables = [t for t in page.find_tables() if len(t.rows) >= 2 and len(t.columns) >= 2]
    if not tables:
        return None
    boxes = [t.bbox for t in tables]

    def outside(obj):
        middle_x, middle_y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= middle_x <= x1 and top <= middle_y <= bottom for x0, top, x1, bottom in boxes)

    items = [(line["top"], line["text"], False) for line in page.filter(outside).extract_text_lines()]
    for table in tables:
        rows = [[cell_text(cell) for cell in row] for row in table.extract()]
        items.append((table.bbox[1], markdown_table(rows), True))
    items.sort(key=lambda item: item[0])
    text, previous_table = "", False
    for _, chunk, is_table in items:
        joiner = "\n\n" if text and (is_table or previous_table) else ("\n" if text else "")
        text += joiner + chunk
        previous_table = is_table
    return _normalise(text)


_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\r\t")
_CONTROL[0xFFFE] = None  # PDFium's marker for a soft hyphen at a line end


def _clean(text: str) -> str:
    return text.translate(_CONTROL)


def _parse_docx(path: Path, guard: Guard) -> ParsedDocument:
    """Word documents, read as a stream (ingestion/docx_reader.py): headings
    become Markdown headings, tables Markdown tables, in body order, so the
    chunker keeps their structure."""
    try:
        blocks, title = docx_reader.read_docx(path, guard)
    except docx_reader.DocxError as exc:
        raise ParseError(str(exc)) from None
    return ParsedDocument(kind="docx", pages=[Page(None, "\n\n".join(blocks))], title=title)


def _parse_html(path: Path, guard: Guard) -> ParsedDocument:
    """The page's main content (not navigation, footers or ads), via trafilatura."""
    import trafilatura

    data = path.read_bytes()
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError("The file looks binary, not HTML; check that the file type is right.")
    html = decode_text(data)
    # trafilatura reads the page in one call that cannot be stopped midway
    # (about 1.5 s a megabyte): the page, markup included, counts as its text.
    guard.add_text(len(html))
    # Headings and definition terms are marked before extraction and restored
    # after it (html_structure): trafilatura drops or garbles them on manuals.
    marked, key = html_structure.mark(html)
    text = trafilatura.extract(
        marked,
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        include_images=False,
        favor_recall=True,
    )
    if not text or not text.strip():
        raise ParseError("No readable main text was found in the HTML page.")
    # trafilatura's Markdown escapes underscores ("max\\_connections"): the
    # passages are shown and searched as plain text, so they are unescaped.
    text = html_structure.restore(text.replace("\\_", "_"), key)
    metadata = trafilatura.extract_metadata(html)
    title = html_structure.title(html, (metadata.title or "").strip() if metadata else "")
    return ParsedDocument(kind="html", pages=[Page(None, _normalise(text))], title=title)
