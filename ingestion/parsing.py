"""Turn a stored file into text pages. Pure: no Django.

Every failure is a `ParseError` whose message a user can act on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PDF_SUFFIXES = {".pdf"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = {".txt", ".text"}
SUPPORTED_SUFFIXES = PDF_SUFFIXES | MARKDOWN_SUFFIXES | TEXT_SUFFIXES
SUPPORTED_DESCRIPTION = "PDF (.pdf), Markdown (.md, .markdown) or plain text (.txt)"


class ParseError(Exception):
    """A document that cannot be read; the message is shown to the user."""


@dataclass(frozen=True)
class Page:
    number: int | None  # 1-based for paged formats, None otherwise
    text: str


@dataclass(frozen=True)
class ParsedDocument:
    kind: str  # "pdf" | "markdown" | "text"
    pages: list[Page] = field(default_factory=list)
    title: str = ""


def is_supported(filename: str) -> bool:
    return Path(filename).suffix.lower() in SUPPORTED_SUFFIXES


def parse_file(path: str | Path, filename: str) -> ParsedDocument:
    """Parse the file at `path`; `filename` (the user's name for it) picks the format."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = suffix or "(no extension)"
        raise ParseError(f"Unsupported file type {shown}. Upload {SUPPORTED_DESCRIPTION}.")
    path = Path(path)
    if path.stat().st_size == 0:
        raise ParseError("The file is empty (0 bytes).")
    if suffix in PDF_SUFFIXES:
        parsed = _parse_pdf(path)
    else:
        kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
        text = _decode_text(path.read_bytes())
        title = _markdown_title(text) if kind == "markdown" else ""
        parsed = ParsedDocument(kind=kind, pages=[Page(None, text)], title=title)
    if not any(page.text.strip() for page in parsed.pages):
        if parsed.kind == "pdf":
            raise ParseError("The PDF has no text layer (it may be scanned images); no text could be extracted.")
        raise ParseError("The file contains no text.")
    return parsed


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError("The file looks binary, not text; check that the file type is right.")
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            if encoding == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
                continue
            return _normalise(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    # Legacy single-byte text (Windows-1252 covers Latin-1's printable range).
    try:
        return _normalise(data.decode("cp1252"))
    except UnicodeDecodeError:
        return _normalise(data.decode("latin-1"))


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _markdown_title(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# "):
            return stripped[2:].strip()
    return ""


def _parse_pdf(path: Path) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PyPdfError

    with path.open("rb") as handle:
        if not handle.read(1024).lstrip().startswith(b"%PDF"):
            raise ParseError("The file is not a PDF (it has no PDF header); it may be corrupt or mislabelled.")
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:  # pypdf raises several types here
                raise ParseError("The PDF is encrypted with a password; upload an unprotected copy.") from None
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            pages.append(Page(number, _normalise(page.extract_text() or "")))
        title = ""
        if reader.metadata and reader.metadata.title:
            title = str(reader.metadata.title).strip()
    except ParseError:
        raise
    except FileNotDecryptedError:
        raise ParseError("The PDF is encrypted with a password; upload an unprotected copy.") from None
    except (PyPdfError, NotImplementedError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            OSError, RecursionError, ZeroDivisionError, AssertionError) as exc:  # what damaged files raise inside pypdf
        log.info("PDF parse failure for %s: %r", path, exc)
        raise ParseError(f"The PDF is damaged and could not be read ({exc.__class__.__name__}: {exc}).") from None
    if not pages:
        raise ParseError("The PDF has no pages.")
    return ParsedDocument(kind="pdf", pages=pages, title=title)
