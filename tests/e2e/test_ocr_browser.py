"""A scanned PDF in the chat (issue #31), end to end on the real Tesseract,
the real embedder and generator, in Debian's Chromium: a PDF of page images
made in the test is read by OCR, a question about it is answered with a
citation of its second page, and the source viewer draws that page with the
cited sentence highlighted where it is printed on the scan."""

import shutil

import pytest

from generation.models import Citation
from ingestion import storage
from tests.conftest import ingest_path
from tests.e2e.test_browser import page  # noqa: F401  (the fixture)
from tests.e2e.test_chat_ui_browser import check_pdf_highlight, log_in, shoot
from tests.scans import make_scanned_pdf

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed (make ocr-deps)"),
]

PAGES = [
    "Northwind Card Handbook\n\nThis handbook describes the Silver and Gold credit cards.",
    "Annual fees\n\nThe Silver card has no annual fee.\n\nThe Gold card has an annual fee of 95 euros.",
]


def test_a_scanned_pdf_answers_with_the_sentence_highlighted_on_its_page(page, live_server, alice, tmp_path):  # noqa: F811
    document = ingest_path(make_scanned_pdf(tmp_path / "scanned-handbook.pdf", PAGES))
    assert document.status == "indexed", document.error
    assert [p["page"] for p in document.ocr_pages] == [1, 2]
    log_in(page, live_server)
    page.fill("#question", "What is the annual fee of the Gold card?")
    page.click("#send")
    answer = page.locator(".msg.assistant:not(.pending)").last
    answer.locator(".sources").wait_for(timeout=120_000)
    assert "scanned-handbook.pdf, page 2" in answer.locator(".sources li").first.inner_text()
    answer.locator("a.cite").first.click()
    viewer = page.locator("#viewer")
    viewer.wait_for(state="visible")
    citation = Citation.objects.filter(document=document).latest("pk")
    sentence = " ".join(" ".join(citation.quote[start:end] for start, end in citation.highlight).split())
    assert "95 euros" in sentence
    check_pdf_highlight(page, viewer, storage.shown_path(document), 2, sentence)
    assert "text read by OCR from a scan" in viewer.locator("#viewer-where").inner_text()
    shoot(page, "ocr-scanned-pdf-highlight")
    assert not page.console_messages, page.console_messages
