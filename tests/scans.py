"""Scanned documents for the OCR tests, made from text whose words are known:
a text PDF (tests/pdfs.py) rendered page by page to images, and the images
rebuilt into a PDF with no text layer, as a scanner makes it; or one page's
image alone, as a photo or a scan saved as PNG, JPEG or TIFF."""

from pathlib import Path

from tests.pdfs import make_pdf

DPI = 200  # a common scanner setting; OCR reads it at RAG_OCR_DPI


def page_images(pages: list[str], folder: Path, dpi: int = DPI) -> list:
    """PIL images (greyscale) of a text PDF of `pages`, one per page."""
    import pypdfium2 as pdfium

    source = make_pdf(folder / "born-digital.pdf", pages)
    document = pdfium.PdfDocument(str(source))
    try:
        return [document[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(len(document))]
    finally:
        document.close()


def make_scanned_pdf(path: Path, pages: list[str], dpi: int = DPI) -> Path:
    """A PDF whose pages are only images of `pages` (no text layer)."""
    images = page_images(pages, path.parent, dpi)
    images[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return path


def make_page_image(path: Path, pages: list[str], dpi: int = DPI) -> Path:
    """An image file of `pages` (the format from the suffix; a TIFF holds every page as a frame)."""
    images = page_images(pages, path.parent, dpi)
    if path.suffix.lower() in (".tif", ".tiff"):
        images[0].save(path, save_all=True, append_images=images[1:], dpi=(dpi, dpi), compression="tiff_deflate")
    else:
        images[0].save(path, dpi=(dpi, dpi))
    return path
