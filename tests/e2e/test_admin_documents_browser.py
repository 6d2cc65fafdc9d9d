"""The document admin in a real browser (Chromium, Playwright): the list's
status and progress refresh without a reload while a document is processed,
and files dropped on the upload form are listed (an unsupported type flagged)
and uploaded. No model runs: the test moves the document's row itself.
Screenshots go to data-test/screenshots/ (copies in docs/screenshots/)."""

from pathlib import Path

import pytest

from ingestion import services
from ingestion.models import Document
from tests.e2e.test_browser import page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser]

# The test output (data-test/, ignored); docs/screenshots/ holds copies chosen for the docs.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "data-test" / "screenshots"

DROP = """([selector, files]) => {
    const transfer = new DataTransfer();
    for (const [name, text] of files) transfer.items.add(new File([text], name));
    const zone = document.querySelector(selector);
    for (const type of ["dragenter", "dragover", "drop"])
        zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def admin_log_in(tab, live_server, path):
    tab.goto(live_server.url + "/admin/login/?next=" + path)
    tab.fill("#id_username", "admin")
    tab.fill("#id_password", "admin-password-1")
    tab.click("input[type=submit]")
    tab.wait_for_url(live_server.url + path)


def shoot(tab, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def csp_problems(tab):
    return [m for m in tab.console_messages if "Content Security Policy" in m or "page error" in m]


def test_the_list_shows_progress_without_a_reload(page, live_server, admin_user):  # noqa: F811
    document = Document.objects.create(
        collection=services.get_collection(),
        title="Handbook",
        sha256="a" * 64,
        original_filename="handbook.pdf",
        file="documents/handbook.pdf",
    )
    admin_log_in(page, live_server, "/admin/ingestion/document/")
    row = page.locator("#result_list tbody tr", has_text="Handbook")
    assert row.locator(".field-status_badge").inner_text() == "Pending"
    page.evaluate("window.notReloaded = true")
    Document.objects.filter(pk=document.pk).update(status="embedding", chunks_total=12, chunks_embedded=5)
    row.locator(".field-progress", has_text="5/12 chunks embedded").wait_for(timeout=10_000)
    assert row.locator(".field-status_badge").inner_text() == "Embedding"
    shoot(page, "admin-documents-live-1280")
    Document.objects.filter(pk=document.pk).update(status="indexed", chunks_embedded=12)
    row.locator(".field-status_badge", has_text="Indexed").wait_for(timeout=10_000)
    assert row.locator(".field-progress").inner_text() == "12/12 chunks embedded"
    assert page.evaluate("window.notReloaded") is True
    assert csp_problems(page) == []


def test_files_dropped_on_the_upload_form_are_listed_and_uploaded(page, live_server, admin_user):  # noqa: F811
    admin_log_in(page, live_server, "/admin/ingestion/document/add/")
    assert (
        page.locator(".rag-dropzone .rag-drop-hint").inner_text() == "Drop files anywhere in this box, or choose them."
    )
    page.evaluate(
        DROP,
        [
            ".rag-dropzone",
            [["notes.md", "# Notes\n\nThe Gold card costs 95 euros.\n"], ["prices.csv", "card,fee\ngold,95\n"]],
        ],
    )
    items = page.locator(".rag-drop-files li")
    assert items.count() == 2 and items.nth(0).inner_text() == "notes.md"
    assert (
        page.locator(".rag-drop-refused").inner_text() == "prices.csv: not a type this site reads; it will be refused"
    )
    shoot(page, "admin-upload-drop-1280")
    page.click("input[name=_save]")  # the server refuses the .csv with the reason, and adds the valid file
    page.wait_for_url(live_server.url + "/admin/ingestion/document/")
    said = page.locator(".messagelist").inner_text()
    assert "1 new document queued for indexing." in said
    assert "Not uploaded: prices.csv: Unsupported file type .csv" in said
    assert Document.objects.get().original_filename == "notes.md"
    shoot(page, "admin-documents-list-1280")
    table = page.locator("#result_list").bounding_box()
    assert table["x"] + table["width"] <= 1280  # every column in view at 1280 px
    assert csp_problems(page) == []
