"""Reading scanned pages and photos of pages with Tesseract. Pure: no Django.

A PDF page whose text layer is empty (or too thin for its area) while an
image covers much of it, and every page of a PNG, JPEG or TIFF upload, is
rendered by PDFium (pypdfium2, which parsing already uses) and read by
Tesseract through pytesseract, in one pass that gives two things: the words
with their confidences (TSV) and a text-only PDF page whose invisible words
sit where Tesseract saw them. That page is laid over the original one as a
form object, so the document gains a text layer and nothing else: the
parser reads the page's text from it as from any PDF, and the source viewer
finds and highlights a cited sentence on the page image exactly as it does
on a born-digital page. Tesseract runs as a child of the parsing child
(ingestion/isolation.py), under the same memory cap and time limit.
"""

from __future__ import annotations

import csv
import functools
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
IMAGE_DESCRIPTION = "images of pages (PNG, JPEG, TIFF)"
# A US Letter page in PDF points: the text a page must hold to be taken as a
# text page scales with its area.
LETTER_AREA = 612 * 792
# The longest side of a page rendered for OCR, in pixels (a poster is read at
# a lower resolution rather than as a gigabyte bitmap).
MAX_SIDE = 7000
# A page image covering at least this share of the page makes it a scan.
SCAN_COVER = 0.25


class OcrError(Exception):
    """OCR could not read a page; the message is for the user."""


@dataclass(frozen=True)
class OcrOptions:
    """How pages are read by OCR (the RAG_OCR_* settings)."""

    enabled: bool = True
    languages: str = "eng"  # Tesseract's codes, joined by "+": "eng+deu"
    command: str = "tesseract"
    dpi: int = 300
    # A page with fewer characters than this (per Letter-sized area) in its
    # text layer, and a large image on it, is read by OCR.
    min_chars: int = 50


@dataclass(frozen=True)
class PageReading:
    """What OCR made of one page: its text-only PDF page and how sure it was."""

    pdf: bytes
    confidence: float  # 0-100, the mean of the words' confidences weighted by their length
    words: int


def missing(options: OcrOptions) -> str:
    """Why this machine cannot read pages by OCR ("" when it can)."""
    if not options.enabled:
        return "OCR is turned off on this server (RAG_OCR=off)."
    if not _installed(options.command):
        return (
            f"OCR is not available on this server: Tesseract ({options.command}) is not installed "
            "(Debian: apt-get install tesseract-ocr tesseract-ocr-eng)."
        )
    absent = [code for code in options.languages.split("+") if code and code not in installed_languages(options)]
    if absent:
        return (
            f"OCR is not available for {', '.join(absent)}: Tesseract has no data for "
            f"{'this language' if len(absent) == 1 else 'these languages'} (RAG_OCR_LANGUAGES; "
            f"Debian: apt-get install {' '.join('tesseract-ocr-' + code.lower() for code in absent)})."
        )
    return ""


@functools.cache
def _installed(command: str) -> bool:
    return shutil.which(command) is not None


def installed_languages(options: OcrOptions) -> frozenset[str]:
    return _languages(options.command)


@functools.cache
def _languages(command: str) -> frozenset[str]:
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = command
    try:
        return frozenset(pytesseract.get_languages())
    except (pytesseract.TesseractNotFoundError, OSError, subprocess.SubprocessError):
        return frozenset()


def needs_ocr(text: str, width: float, height: float, image_cover: float, options: OcrOptions) -> bool:
    """Whether a PDF page is a scan: an image covers `image_cover` (0-1) of
    it and its text layer is too thin for its area (`width` x `height` points)."""
    if image_cover < SCAN_COVER:
        return False
    wanted = options.min_chars * max(width * height, 1.0) / LETTER_AREA
    return len("".join(text.split())) < wanted


def image_cover(page) -> float:
    """The share of a PDFium page the largest image on it covers (0-1)."""
    import pypdfium2 as pdfium

    width, height = page.get_size()
    area = max(width * height, 1.0)
    largest = 0.0
    for obj in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        cover = (max(0.0, min(right, width) - max(left, 0.0)) * max(0.0, min(top, height) - max(bottom, 0.0))) / area
        largest = max(largest, cover)
    return largest


def read_into(document, index: int, options: OcrOptions, timeout: float) -> PageReading:
    """Read page `index` of the PDFium `document` with Tesseract (within
    `timeout` seconds) and lay the text-only page it writes over the page,
    scaled to it: its words become the page's text layer."""
    page = document[index]
    rotation = page.get_rotation()
    try:
        if rotation:  # read the page as it is stored, so the words land in its own coordinates
            page.set_rotation(0)
        width, height = page.get_size()
        scale = min(options.dpi / 72, MAX_SIDE / max(width, height, 1.0))
        image = page.render(scale=scale, grayscale=True).to_pil()
        reading = read_image(image, round(72 * scale), options, timeout)
        del image
        _overlay(document, page, reading.pdf)
    finally:
        if rotation:
            page.set_rotation(rotation)
        page.close()
    return reading


def read_image(image, dpi: int, options: OcrOptions, timeout: float) -> PageReading:
    """Tesseract on a PIL image at `dpi`: the text-only PDF page and the words' confidences."""
    import pytesseract

    pytesseract.pytesseract.tesseract_cmd = options.command
    with tempfile.TemporaryDirectory(prefix="rag-ocr-") as folder:
        source, base = Path(folder) / "page.png", Path(folder) / "page"
        image.save(source, dpi=(dpi, dpi))
        try:
            pytesseract.pytesseract.run_tesseract(
                str(source),
                str(base),
                "pdf",
                options.languages,
                config=f"--dpi {dpi} -c textonly_pdf=1 -c tessedit_create_tsv=1",
                timeout=max(1, int(timeout)),
            )
        except pytesseract.TesseractNotFoundError:
            raise OcrError(missing(options) or "Tesseract could not be started.") from None
        except RuntimeError as exc:  # pytesseract's "Tesseract process timeout"
            if "timeout" in str(exc).lower():
                raise TimeoutError(str(exc)) from None
            raise
        except pytesseract.TesseractError as exc:
            if "memory" in str(exc.message).lower() or "alloc" in str(exc.message).lower():
                raise MemoryError(exc.message) from None
            raise OcrError(f"OCR failed on a page ({exc.message.strip()[:200]}).") from None
        pdf = (base.with_suffix(".pdf")).read_bytes()
        confidence, words = _confidence(base.with_suffix(".tsv").read_text(encoding="utf-8", errors="replace"))
    return PageReading(pdf=pdf, confidence=confidence, words=words)


def _confidence(tsv: str) -> tuple[float, int]:
    """The words' mean confidence weighted by their length, and their count, from Tesseract's TSV."""
    total = weight = 0.0
    words = 0
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        try:
            level, conf = int(row.get("level") or 0), float(row.get("conf") or -1)
        except ValueError:
            continue
        if level != 5 or conf < 0 or not text:
            continue
        words += 1
        total += conf * len(text)
        weight += len(text)
    return (round(total / weight, 1) if weight else 0.0), words


def _overlay(document, page, pdf: bytes) -> None:
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(pdf)
    try:
        width, height = page.get_size()
        left, bottom = page.get_mediabox()[:2]
        ocr_width, ocr_height = source[0].get_size()
        layer = source.page_as_xobject(0, document).as_pageobject()
        layer.transform(pdfium.PdfMatrix().scale(width / ocr_width, height / ocr_height).translate(left, bottom))
        page.insert_obj(layer)
        page.gen_content()
    finally:
        source.close()


def image_to_pdf(path: Path, options: OcrOptions, guard) -> tuple[bytes, int]:
    """A PDF of the image's frames (one page each, sized for rendering at the
    OCR resolution to give back the image's own pixels) and the page count.
    `guard` is told of the pages before any is converted."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            guard.pages(getattr(image, "n_frames", 1))
            frames = []
            for frame in ImageSequence.Iterator(image):
                guard.step()
                frame = frame.convert("L" if frame.mode in ("1", "L", "I;16", "I", "F", "LA") else "RGB")
                frames.append(frame)
    except Image.DecompressionBombError:
        raise OcrError(
            "The image has too many pixels to be read safely (more than "
            f"{Image.MAX_IMAGE_PIXELS * 2:,}); scan it at a lower resolution."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise OcrError(f"The image could not be read: it is damaged or not a PNG, JPEG or TIFF ({exc}).") from None
    out = io.BytesIO()
    frames[0].save(out, "PDF", resolution=options.dpi, save_all=True, append_images=frames[1:], quality=92)
    return out.getvalue(), len(frames)
