"""OCR of scanned pages and images on the real Tesseract (issue #31): a PDF of
page images gains a text layer holding the words where they are on the page
(PDFium finds and boxes a sentence in it, as the viewer does); a text page
beside a scanned one is left as it is; PNG, JPEG and multi-page TIFF are read;
a machine without Tesseract, or without a language's data, says so; OCR stays
within the parse limits and in the memory-capped child."""

import re
import shutil

import pytest

from chat.pdfpage import sentence_boxes
from ingestion import ocr
from ingestion.isolation import parse_isolated
from ingestion.limits import Guard, LimitExceeded, Limits
from ingestion.ocr import OcrOptions
from ingestion.parsing import ParseError, parse_file, unsupported_reason
from tests.pdfs import make_pdf
from tests.scans import make_page_image, make_scanned_pdf

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Tesseract is not installed (make ocr-deps installs it)"
)

POLICY = [
    "Travel Policy\n\nThis policy applies to every employee who travels for work.",
    "Hotels\n\nA hotel night is refunded up to 140 euros in Paris and 110 euros elsewhere.\n\n"
    "Trains are booked in second class for journeys under four hours.",
]
SENTENCE = "A hotel night is refunded up to 140 euros in Paris and 110 euros elsewhere."
NO_TESSERACT = OcrOptions(command="/nonexistent/tesseract")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def recovered(original: str, read: str) -> float:
    """The share of the original's words that OCR gave back (as a multiset)."""
    left = words(read)
    found = 0
    for word in words(original):
        if word in left:
            left.remove(word)
            found += 1
    return found / len(words(original))


def test_a_scanned_pdf_gains_a_text_layer_where_its_words_are(tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", POLICY)
    assert parse_file_or_none(scan, OcrOptions(enabled=False)) is None  # no text layer of its own
    searchable = tmp_path / "searchable.pdf"
    parsed = parse_file(scan, "scan.pdf", searchable=searchable)
    assert parsed.kind == "pdf"
    assert [p.number for p in parsed.ocr_pages] == [1, 2]
    assert all(p.confidence > 80 and p.words > 5 for p in parsed.ocr_pages)
    for original, page in zip(POLICY, parsed.pages, strict=True):
        assert recovered(original, page.text) > 0.95, page.text
    assert "140 euros in Paris" in parsed.pages[1].text
    # The searchable copy: the same page, with the sentence found and boxed where it is printed.
    found = sentence_boxes(searchable, 2, SENTENCE)
    assert found["boxes"], found
    scanned_page = sentence_boxes(scan, 2, "")
    assert (found["width"], found["height"]) == (scanned_page["width"], scanned_page["height"])
    top_of_page = found["height"] - max(box[3] for box in found["boxes"])
    assert 30 < top_of_page < 200  # the sentence is near the top of the page, under its heading
    # Read again, the copy is a text PDF: nothing is read by OCR twice.
    assert parse_file(searchable, "again.pdf").ocr_pages == []


def parse_file_or_none(path, options):
    try:
        return parse_file(path, path.name, options=options)
    except ParseError:
        return None


def test_only_the_scanned_page_of_a_mixed_pdf_is_read_by_ocr(tmp_path):
    import pypdfium2 as pdfium

    text = make_pdf(tmp_path / "text.pdf", ["Foreword\n\nThis guide was written by the facilities team."])
    scan = make_scanned_pdf(tmp_path / "scan.pdf", POLICY[1:])
    mixed = pdfium.PdfDocument(str(text))
    mixed.import_pages(pdfium.PdfDocument(str(scan)))
    mixed.save(str(tmp_path / "mixed.pdf"))
    parsed = parse_file(tmp_path / "mixed.pdf", "mixed.pdf", searchable=tmp_path / "out.pdf")
    assert [p.number for p in parsed.ocr_pages] == [2]
    assert parsed.pages[0].text.startswith("Foreword")
    assert "110 euros elsewhere" in parsed.pages[1].text


@pytest.mark.parametrize("name", ["page.png", "page.jpg", "pages.tiff"])
def test_images_are_read_page_by_page(tmp_path, name):
    pages = POLICY if name.endswith(".tiff") else POLICY[1:]
    image = make_page_image(tmp_path / name, pages)
    parsed = parse_file(image, name, searchable=tmp_path / "out.pdf")
    assert parsed.kind == "image"
    assert [p.number for p in parsed.pages] == list(range(1, len(pages) + 1))
    assert "140 euros in Paris" in parsed.pages[-1].text
    assert sentence_boxes(tmp_path / "out.pdf", len(pages), SENTENCE)["boxes"]


def test_without_tesseract_images_are_refused_and_scans_say_why(tmp_path):
    reason = unsupported_reason("scan.png", NO_TESSERACT)
    assert "OCR" in reason and "Tesseract" in reason and "not installed" in reason
    assert unsupported_reason("scan.pdf", NO_TESSERACT) == ""  # a PDF may have a text layer
    scan = make_scanned_pdf(tmp_path / "scan.pdf", POLICY[:1])
    with pytest.raises(ParseError, match="no text layer.*Tesseract.*not installed"):
        parse_file(scan, "scan.pdf", options=NO_TESSERACT)
    assert "turned off" in unsupported_reason("scan.png", OcrOptions(enabled=False))


def test_a_language_without_its_data_is_named():
    assert "xyz" in ocr.missing(OcrOptions(languages="eng+xyz"))
    assert ocr.missing(OcrOptions(languages="eng")) == ""


def test_a_damaged_image_fails_with_a_reason(tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    with pytest.raises(ParseError, match="image could not be read"):
        parse_file(bad, "photo.jpg")


def test_ocr_stops_at_the_parse_time_limit(tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", POLICY * 3)
    clock = iter(range(0, 10_000, 1))  # each look at the clock is a second later
    guard = Guard(Limits(timeout=3), clock=lambda: next(clock))
    with pytest.raises(LimitExceeded, match="RAG_PARSE_TIMEOUT"):
        parse_file(scan, "scan.pdf", guard)


def test_ocr_counts_pages_against_the_page_limit(tmp_path):
    image = make_page_image(tmp_path / "pages.tiff", POLICY * 2)
    with pytest.raises(LimitExceeded, match="RAG_MAX_PAGES"):
        parse_file(image, "pages.tiff", Guard(Limits(max_pages=3)))


def test_ocr_runs_in_the_memory_capped_child(tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", POLICY)
    searchable = tmp_path / "searchable.pdf"
    parsed = parse_isolated(scan, "scan.pdf", Guard(), memory_mb=1024, options=OcrOptions(), searchable=searchable)
    assert [p.number for p in parsed.ocr_pages] == [1, 2]
    assert "140 euros in Paris" in parsed.pages[1].text
    assert sentence_boxes(searchable, 2, SENTENCE)["boxes"]
