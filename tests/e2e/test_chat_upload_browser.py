"""Staff add documents from the chat page (ragsite/static/ragsite/upload.js)
in a real browser, with a real Celery worker indexing them: files dropped on
the page go to the chosen collection, each row follows its document to
"indexed", a refused file says why without stopping the others, and "Ask
about it" limits the next question to that document."""

from pathlib import Path

import pytest

from ingestion.models import Collection, Document
from tests.e2e.test_browser import page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "data-test" / "screenshots"

DROP = """(files) => {
    const transfer = new DataTransfer();
    for (const [name, text] of files) transfer.items.add(new File([text], name));
    for (const type of ["dragenter", "dragover", "drop"])
        document.body.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""

GUIDE = "# Lounge guide\n\n## Access\n\nPlatinum card holders may use the airport lounges free of charge.\n"


def shoot(tab, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_staff_add_documents_from_the_chat_and_ask_about_one(page, live_server, admin_user, start_worker):  # noqa: F811
    Collection.objects.create(name="manuals", is_public=True)
    Collection.objects.create(name="handbooks", is_public=True)
    start_worker()
    page.goto(live_server.url + "/accounts/login/?next=/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.locator("#upload-open").click()
    page.locator("#upload-collection").select_option("handbooks")
    page.evaluate(DROP, [["lounge-guide.md", GUIDE], ["setup.exe", "MZ not a document"]])
    rows = page.locator("#upload-list .upload")
    assert rows.count() == 2
    refused = page.locator(".upload", has_text="setup.exe")
    refused.locator(".upload-state", has_text="Refused").wait_for()
    assert "Unsupported file type .exe" in refused.inner_text()
    guide = page.locator(".upload", has_text="lounge-guide.md")
    states = set()
    for _ in range(600):  # the row moves through the stages as the worker reads and embeds
        states.add(guide.get_attribute("data-state"))
        if guide.get_attribute("data-state") == "indexed":
            break
        page.wait_for_timeout(200)
    assert guide.get_attribute("data-state") == "indexed", guide.inner_text()
    assert "Indexed" in guide.inner_text() and guide.locator("progress").evaluate("p => p.value") == 1
    document = Document.objects.get(original_filename="lounge-guide.md")
    assert document.collection.name == "handbooks" and document.status == Document.Status.INDEXED
    shoot(page, "upload-from-chat-1280")
    # Ask about it: the next question looks in that document only.
    sent = []
    page.route("**/api/ask", lambda route: (sent.append(route.request.post_data_json), route.abort()))
    guide.get_by_role("button", name="Ask about it").click()
    assert page.locator("#ask-document").is_visible() and "Lounge guide" in page.locator("#ask-document").inner_text()
    page.fill("#question", "Who may use the lounges?")
    page.keyboard.press("Enter")
    page.locator(".msg.error").wait_for()
    assert sent[0]["document"] == [document.pk]
    page.locator("#ask-document-clear").click()
    assert page.locator("#ask-document").is_hidden()
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "upload-from-chat-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
