"""The documents page in a real browser (Debian's Chromium, Playwright) at
1280 and 390 px, light and dark: thumbnails drawn, a content search with its
passage, and "Ask about it" narrowing the chat to the document. Screenshots
go to data-test/screenshots/ (copies in docs/screenshots/)."""

import pytest

from ingestion.models import Collection
from tests.conftest import ingest_path
from tests.e2e.test_browser import page  # noqa: F401  (the fixture)
from tests.e2e.test_chat_ui_browser import log_in, shoot
from tests.pdfs import make_pdf

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def library(alice, tmp_path):
    Collection.objects.create(name="manuals", is_public=True)
    pdf = make_pdf(
        tmp_path / "card-handbook.pdf",
        ["Northwind Card Handbook\n\nEverything about your cards.", "Fees\n\nThe Gold card costs 95 euros a year."],
        title="Card Handbook",
    )
    note = tmp_path / "travel-policy.md"
    note.write_text("# Travel policy\n\nThe daily meal allowance when travelling is 45 euros.\n")
    return ingest_path(pdf, "manuals"), ingest_path(note, "manuals")


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_documents_page_shows_thumbnails_finds_by_content_and_narrows_the_chat(
    page,  # noqa: F811
    live_server,
    library,
    width,
    height,
    scheme,  # noqa: F811
):
    handbook, policy = library
    page.set_viewport_size({"width": width, "height": height})
    page.emulate_media(color_scheme=scheme)
    log_in(page, live_server, "/documents/")
    thumb = page.locator(f'img[src="/documents/{handbook.pk}/thumbnail.png"]')
    thumb.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert page.locator(".library-card").count() == 2
    assert page.locator(".library-type").inner_text() == "MD"  # the Markdown file's card
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
    shoot(page, f"documents-{width}-{scheme}")

    page.fill("#library-q", "meal allowance")
    page.press("#library-q", "Enter")
    page.wait_for_url("**/documents/?q=*")
    first = page.locator(".library-card").first
    assert "Travel policy" in first.inner_text() and "45 euros" in first.inner_text()
    shoot(page, f"documents-search-{width}-{scheme}")

    first.get_by_role("link", name="Ask about it").click()
    page.wait_for_url(f"**/?about={policy.pk}")
    note = page.locator("#ask-document")
    note.wait_for(state="visible")
    assert "Travel policy" in note.inner_text()
    assert page.evaluate("document.activeElement.id") == "question"
    assert not [m for m in page.console_messages if "error" in m.lower()], page.console_messages
