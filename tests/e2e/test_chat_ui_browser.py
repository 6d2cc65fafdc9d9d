"""The chat UI's behaviour in a real browser (Debian's Chromium, Playwright):
the source viewer, rendered Markdown with hostile text kept inert, the phone
layout and dark mode, the question box, and failed requests. Answers are
stored rows or a stubbed /api/ask, so no model runs; screenshots of the main
screens go to data-test/screenshots/ (copies in docs/screenshots/)."""

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from generation.models import Citation, Conversation, Message
from ingestion.models import Chunk, Collection
from tests.conftest import ingest_path
from tests.e2e.test_browser import page  # noqa: F401  (the fixture)
from tests.engines import ScriptedEngine
from tests.pdfs import make_pdf
from tests.test_chat_ui import HOSTILE, PASSAGE, cite_handbook_and_a_withdrawn_leaflet, make_document

pytestmark = [pytest.mark.browser]

# The test output (data-test/, ignored); docs/screenshots/ holds copies chosen for the docs.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "data-test" / "screenshots"


@pytest.fixture
def answered(alice, tmp_path):
    public = Collection.objects.create(name="manuals", is_public=True)
    pdf = make_pdf(
        tmp_path / "handbook.pdf",
        [
            "Northwind Card Handbook",
            "Booking\n\nYou can book online.\n\n"
            "Silver: no fee. Gold: 95 euros a year.\n\n"
            "The Gold card fee is waived in the first year.",
        ],
    )
    document = make_document(public, data=pdf.read_bytes())
    chunks = [
        Chunk.objects.create(
            document=document,
            ordinal=i,
            text=text,
            page=i + 1,
            heading=heading,
            char_start=0,
            char_end=len(text),
            content_hash=str(i) * 64,
        )
        for i, (text, heading) in enumerate(
            [
                ("Northwind Card Handbook", ""),
                (PASSAGE, "Booking"),
                ("## Insurance\n\nThe Platinum card includes travel insurance.", "Insurance"),
            ]
        )
    ]
    conversation = Conversation.objects.create(user=alice, title="What are the card fees?")
    Message.objects.create(conversation=conversation, role="user", content="What are the card fees?")
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        kind="generated",
        content="## Fees\n\nThe fees by card:\n\n- Gold: **95 euros** a year [1]\n- Silver: no fee [2]\n\n"
        "The Gold fee is waived in the first year [1].",
    )
    cite_handbook_and_a_withdrawn_leaflet(answer, document, chunks[1])
    return conversation, answer, document


def log_in(tab, live_server, path="/"):
    tab.goto(live_server.url + "/accounts/login/?next=" + path)
    tab.fill("#id_username", "alice")
    tab.fill("#id_password", "alice-password-1")
    tab.click("button[type=submit]")
    tab.wait_for_url(live_server.url + path)


# The text colour of an element and the first opaque background behind it.
COLOURS = """element => {
    let node = element, background = "rgba(0, 0, 0, 0)";
    while (node && /rgba\\(.*, 0\\)$/.test(background)) {
        background = getComputedStyle(node).backgroundColor;
        node = node.parentElement;
    }
    return [getComputedStyle(element).color, background];
}"""


def contrast(tab, selector) -> float:
    """WCAG contrast ratio of the first `selector`'s text on its background."""

    def luminance(css):
        channels = [int(float(v)) / 255 for v in css[css.index("(") + 1 : -1].split(",")[:3]]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    text, background = (luminance(c) for c in tab.locator(selector).first.evaluate(COLOURS))
    light, dark = max(text, background), min(text, background)
    return (light + 0.05) / (dark + 0.05)


def shoot(tab, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def storage_path(document):
    from ingestion import storage

    return storage.local_path(document)


def char_boxes(path, page_number, sentence):
    """The page's size and the boxes of `sentence`'s characters, read by PDFium
    character by character (the server's boxes come from its text runs)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    sheet = pdf[page_number - 1]
    text = sheet.get_textpage()
    index, length = text.search(sentence, match_case=False).get_next()
    boxes = [text.get_charbox(i) for i in range(index, index + length)]
    width, height = sheet.get_size()
    return width, height, [b for b in boxes if b[2] > b[0] and b[3] > b[1]]  # spaces have no box


# The page's canvas, the highlight boxes over it and how much of the canvas is ink, in CSS pixels.
PDF_GEOMETRY = """body => {
    const canvas = body.querySelector("canvas"), c = canvas.getBoundingClientRect(), b = body.getBoundingClientRect();
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let ink = 0;
    for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 128) ink++;
    const marks = [...body.querySelectorAll(".pdf-mark")].map((m) => {
        const r = m.getBoundingClientRect();
        return [r.left - c.left, r.top - c.top, r.right - c.left, r.bottom - c.top];
    });
    return {width: c.width, height: c.height, ink: ink, marks: marks,
            visible: marks.length > 0 && marks.every((m) => m[1] + c.top >= b.top && m[3] + c.top <= b.bottom)};
}"""


def pdf_geometry(viewer):
    body = viewer.locator("#original-body")
    body.locator(".pdf-mark").first.wait_for()
    return body.evaluate(PDF_GEOMETRY)


def check_pdf_highlight(tab, viewer, path, page_number, sentence):
    """The highlight drawn over PDF.js's canvas covers the sentence's characters
    and nothing far from them, and is in view; the canvas holds the page's text."""
    geometry = pdf_geometry(viewer)
    width, height, chars = char_boxes(path, page_number, sentence)
    scale = geometry["width"] / width
    assert abs(geometry["height"] / height - scale) < 0.01  # the page drawn without distortion
    assert geometry["ink"] > 200  # PDF.js drew the text
    assert geometry["visible"]  # scrolled to the highlight
    marks = [[x1 / scale, height - y2 / scale, x2 / scale, height - y1 / scale] for x1, y1, x2, y2 in geometry["marks"]]
    for left, bottom, right, top in chars:  # every character's centre is under a mark
        x, y = (left + right) / 2, (bottom + top) / 2
        assert any(m[0] <= x <= m[2] and m[1] <= y <= m[3] for m in marks), (x, y, marks)
    union = [min(m[0] for m in marks), min(m[1] for m in marks), max(m[2] for m in marks), max(m[3] for m in marks)]
    expected = [min(c[0] for c in chars), min(c[1] for c in chars), max(c[2] for c in chars), max(c[3] for c in chars)]
    assert all(abs(a - b) < 4 for a, b in zip(union, expected, strict=True)), (union, expected)  # within 4 pt
    assert viewer.locator(".pdf-where").inner_text() == f"Page {page_number} of 2"


TEXT_LAYER = """(layer) => {
    const range = document.createRange();
    range.selectNodeContents(layer);
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    const text = selection.toString();
    selection.removeAllRanges();
    const span = [...layer.querySelectorAll("span")].find((s) => s.textContent.includes("waived"));
    const box = span.getBoundingClientRect();
    const mark = layer.parentElement.querySelector(".pdf-mark").getBoundingClientRect();
    return {text: text, overlap: box.top < mark.bottom && box.bottom > mark.top && box.left < mark.right};
}"""


def check_text_layer(viewer, sentence):
    """The page's words can be selected: PDF.js's text layer holds them over
    the drawing, the cited one where its highlight is."""
    layer = viewer.locator("#original-body .textLayer")
    layer.locator("span", has_text="waived").first.wait_for()
    found = layer.evaluate(TEXT_LAYER)
    assert " ".join(sentence.split()) in " ".join(found["text"].split()), found["text"]
    assert found["overlap"]


def test_a_citation_opens_the_passage_with_the_sentence_highlighted(page, live_server, answered):  # noqa: F811
    conversation, _, document = answered
    log_in(page, live_server, f"/c/{conversation.pk}/")
    answer = page.locator(".msg.assistant")
    assert answer.locator(".kind").inner_text() == "Checked against the sources"  # the answer's state, in words
    assert answer.locator(".body h2").inner_text() == "Fees"  # Markdown: a heading and a list
    assert answer.locator(".body li").count() == 2
    answer.locator("a.cite").first.click()
    viewer = page.locator("#viewer")
    viewer.wait_for(state="visible")
    assert "Card Handbook" in viewer.locator("#viewer-title").inner_text()
    assert viewer.locator("mark").inner_text() == "The Gold card fee is waived in the first year."
    assert viewer.locator(".passage h2").inner_text() == "Booking"
    link = viewer.locator("#viewer-open")
    assert link.get_attribute("href") == f"/documents/{document.pk}/file#page=2"
    assert "page 2" in link.inner_text()
    response = page.request.get(live_server.url + f"/documents/{document.pk}/file")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    with page.context.expect_page() as opened:  # the link opens the file, at the page, in Chromium's PDF viewer
        link.click()
    original = opened.value
    original.wait_for_load_state()
    original.wait_for_timeout(1000)
    assert original.url.endswith(f"/documents/{document.pk}/file#page=2")
    shoot(original, "original-pdf-at-page-2")
    original.close()
    assert viewer.locator(".where").first.inner_text() == "handbook.pdf, page 2 · Booking"
    # The page itself, drawn by PDF.js in the panel, the sentence highlighted where its characters are.
    check_pdf_highlight(page, viewer, storage_path(document), 2, "The Gold card fee is waived in the first year.")
    check_text_layer(viewer, "The Gold card fee is waived in the first year.")
    viewer.locator("#viewer-more").click()
    viewer.locator("#viewer-after .passage").wait_for()
    assert "Northwind Card Handbook" in viewer.locator("#viewer-before").inner_text()
    assert viewer.locator("#viewer-after h2").inner_text() == "Insurance"
    shoot(page, "citation-viewer-1280")
    # Zoom: the page and its highlight drawn larger; the page before; full screen.
    before = pdf_geometry(viewer)
    zoom = viewer.locator(".pdf-zoom").inner_text()
    viewer.get_by_role("button", name="Zoom in").click()
    for _ in range(50):
        if viewer.locator(".pdf-zoom").inner_text() != zoom:
            break
        page.wait_for_timeout(100)
    after = pdf_geometry(viewer)
    assert after["width"] > before["width"] * 1.05
    ratio = after["width"] / before["width"]
    assert (
        abs((after["marks"][0][2] - after["marks"][0][0]) / (before["marks"][0][2] - before["marks"][0][0]) - ratio)
        < 0.1
    )
    viewer.get_by_role("button", name="Fit to width").click()
    viewer.get_by_role("button", name="Previous page").click()
    viewer.locator(".pdf-where", has_text="Page 1 of 2").wait_for()
    assert viewer.locator(".pdf-mark").count() == 0  # the sentence is on page 2
    viewer.get_by_role("button", name="Next page").click()
    viewer.locator(".pdf-mark").first.wait_for()
    viewer.get_by_role("button", name="Full screen").click()
    assert viewer.get_attribute("class") == "viewer full"
    for _ in range(50):
        if pdf_geometry(viewer)["width"] > before["width"] * 1.5:
            break
        page.wait_for_timeout(100)
    check_pdf_highlight(page, viewer, storage_path(document), 2, "The Gold card fee is waived in the first year.")
    shoot(page, "citation-viewer-full-1280")
    page.keyboard.press("Escape")  # out of full screen first
    assert viewer.get_attribute("class") == "viewer" and viewer.is_visible()
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert viewer.is_hidden(), page.console_messages
    # The preview of [1] on hover: the source and its sentence.
    answer.locator("a.cite").first.hover()
    preview = page.locator("#cite-preview")
    preview.wait_for(state="visible")
    assert "Card Handbook" in preview.inner_text()
    assert "The Gold card fee is waived in the first year." in preview.inner_text()
    shoot(page, "citation-preview-1280")
    page.mouse.move(5, 400)
    preview.wait_for(state="hidden")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    answer.locator("button", has_text="Copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("## Fees") and "Sources:\n[1] Card Handbook (handbook.pdf, page 2)" in copied
    answer.locator("a.cite[data-cite='2']").click()
    assert "withdrawn — the document was deleted" in viewer.inner_text()
    assert link.is_hidden()
    assert not page.console_messages, page.console_messages


def test_answers_and_sources_are_marked_helpful_and_stay_marked(page, live_server, answered):  # noqa: F811
    conversation, answer_row, _ = answered
    log_in(page, live_server, f"/c/{conversation.pk}/")
    answer = page.locator(".msg.assistant")
    helpful = answer.locator(".actions button.verdict", has_text="Helpful").first
    not_helpful = answer.locator(".actions button.verdict", has_text="Not helpful")
    assert helpful.get_attribute("aria-pressed") == "false"
    helpful.click()
    page.wait_for_selector(".actions button.verdict[data-value='true'][aria-pressed='true']")
    answer.locator("a.cite").first.click()  # opening a source records it
    viewer = page.locator("#viewer")
    viewer.wait_for(state="visible")
    source_no = viewer.locator("#viewer-verdict button.verdict[data-value='false']")
    source_no.click()
    page.wait_for_selector("#viewer-verdict button.verdict[data-value='false'][aria-pressed='true']")
    shoot(page, "feedback-1280")
    page.reload()  # both verdicts are stored
    answer = page.locator(".msg.assistant")
    assert answer.locator(".actions button.verdict[data-value='true']").get_attribute("aria-pressed") == "true"
    assert not_helpful.get_attribute("aria-pressed") == "false"
    answer.locator("a.cite").first.click()
    assert viewer.locator("#viewer-verdict button.verdict[data-value='false']").get_attribute("aria-pressed") == "true"
    cited = Citation.objects.get(message=answer_row, number=1)
    assert cited.helpful is False and cited.opened is not None
    assert Message.objects.get(pk=answer_row.pk).helpful is True
    # Pressed again, a verdict is taken back.
    page.keyboard.press("Escape")
    answer.locator(".actions button.verdict[data-value='true']").click()
    page.wait_for_selector(".actions button.verdict[data-value='true'][aria-pressed='false']")
    assert Message.objects.get(pk=answer_row.pk).helpful is None
    assert not page.console_messages, page.console_messages


def test_hostile_text_in_answers_and_passages_stays_inert(page, live_server, alice):  # noqa: F811
    public = Collection.objects.create(name="manuals", is_public=True)
    document = make_document(public, title="<img src=x onerror=alert('title')>")
    conversation = Conversation.objects.create(user=alice, title="<script>alert('title')</script>")
    answer = Message.objects.create(
        conversation=conversation, role="assistant", kind="generated", content=HOSTILE + " [1]"
    )
    Citation.objects.create(
        message=answer,
        number=1,
        document=document,
        title=document.title,
        filename="x.pdf",
        quote=HOSTILE,
        highlight=[[0, 20]],
    )
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server, f"/c/{conversation.pk}/")
    page.locator("a.cite").click()
    page.locator("#viewer").wait_for(state="visible")
    assert (
        page.locator(".messages img, #viewer-passage img, #viewer-title img, .messages script, .sidebar script").count()
        == 0
    )
    assert "<script>alert('passage')</script>" in page.locator(".msg.assistant .body").inner_text()
    assert page.locator(".msg.assistant .body strong").inner_text() == "bold"
    assert page.locator(".messages a[href^='javascript']").count() == 0
    assert dialogs == []


def test_the_layout_on_a_phone_and_in_dark_mode(page, live_server, answered):  # noqa: F811
    conversation, _, _ = answered
    log_in(page, live_server, f"/c/{conversation.pk}/")
    images = {"hold": False, "held": []}  # the cited page (its PDF and boxes), held back until the sheet is measured

    def image(route):
        images["held"].append(route) if images["hold"] else route.continue_()

    page.route("**/documents/*/file", image)
    page.route("**/citations/*/boxes", image)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.set_viewport_size({"width": 1280, "height": 800})
        assert page.locator("#sidebar").is_visible() and page.locator("#menu").is_hidden()
        for selector in (".ask-help", ".sources-title", ".where", ".sidebar .date", ".kind", "a.cite", ".msg .body"):
            assert contrast(page, selector) >= 4.5, (scheme, selector, contrast(page, selector))
        # Placeholders take the muted text colour (measured at 4.5:1 or more above), not a faint grey.
        muted = page.evaluate("getComputedStyle(document.querySelector('.ask-help')).color")
        placeholder = "getComputedStyle(document.querySelector('#question'), '::placeholder').color"
        assert page.evaluate(placeholder) == muted, (scheme, page.evaluate(placeholder), muted)
        shoot(page, f"chat-1280-{scheme}")
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.locator("#sidebar").is_hidden()
        assert page.locator(".chat").bounding_box()["width"] >= 380  # the chat has the width
        shoot(page, f"chat-390-{scheme}")
        page.click("#menu")
        assert page.locator("#sidebar").is_visible() and page.get_attribute("#menu", "aria-expanded") == "true"
        shoot(page, f"chat-390-menu-{scheme}")
        backdrop = page.evaluate("getComputedStyle(document.querySelector('.chat'), '::before').backgroundColor")
        assert backdrop == "rgba(0, 0, 0, 0.45)"  # the chat dimmed behind the menu
        page.locator(".chat").click(position={"x": 350, "y": 400})  # a tap beside the menu puts it away
        assert page.locator("#sidebar").is_hidden() and page.get_attribute("#menu", "aria-expanded") == "false"
        images["hold"] = True
        page.locator("a.cite").first.click()
        close, sheet = page.locator("#viewer-close").bounding_box(), page.locator("#viewer").bounding_box()
        assert sheet["y"] <= close["y"] and close["y"] + close["height"] <= sheet["y"] + sheet["height"]  # in view
        images["hold"] = False
        while images["held"]:
            images["held"].pop().continue_()
        page.locator("#original-body .pdf-mark").first.wait_for()
        assert page.locator("#viewer-close").bounding_box() == close  # a late page does not move it from the finger
        shoot(page, f"citation-sheet-390-{scheme}")
        page.click("#viewer-close")
        page.locator("#viewer").wait_for(state="hidden")
        page.set_viewport_size({"width": 360, "height": 740})  # the narrowest phones: nothing scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 23, 31)"  # the dark theme's
    assert not page.console_messages, page.console_messages


def test_the_question_box_and_a_failed_request(page, live_server, alice):  # noqa: F811
    log_in(page, live_server)
    box = page.locator("#question")
    assert page.evaluate("document.activeElement.id") == "question"  # focused on load
    assert page.locator("label[for=question]").inner_text() == "Your question"
    assert box.evaluate("e => e.tagName") == "TEXTAREA"
    page.route("**/api/ask", lambda route: route.abort("connectionrefused"))
    box.type("First line")
    page.keyboard.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "First line\nsecond line"
    page.keyboard.press("Enter")
    error = page.locator(".msg.error")
    error.wait_for()
    assert "could not be reached" in error.inner_text() and "TypeError" not in error.inner_text()
    assert page.locator(".msg.user .body").inner_text() == "First line\nsecond line"

    # Retry sends the question again; this time the stream answers.
    conversation = Conversation.objects.create(user=alice, title="Retried")
    Message.objects.create(
        conversation=conversation, role="user", content="First line\nsecond line"
    )  # as the server stores it
    stored = Message.objects.create(
        conversation=conversation, role="assistant", kind="generated", content="- one\n- two"
    )
    sse = "".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n"
        for name, data in [
            ("start", {"conversation_id": conversation.pk, "query": "x"}),
            ("token", {"text": "- one"}),
            (
                "done",
                {
                    "conversation_id": conversation.pk,
                    "message_id": stored.pk,
                    "answer": stored.content,
                    "citations": [],
                },
            ),
        ]
    )
    page.unroute("**/api/ask")
    page.route("**/api/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=sse))
    error.locator("button", has_text="Retry").click()
    answer = page.locator(".msg.assistant:not(.error)")
    answer.locator(".body li").nth(1).wait_for()
    assert page.locator(".msg.error").count() == 0 and page.locator(".msg.user").count() == 1
    assert answer.locator("button", has_text="Copy").is_visible()
    # Ask again: the same question answered anew, as a second version of this answer (the
    # stub stands for the server, which stores that version before its `done`).
    sent = []
    question = Message.objects.get(conversation=conversation, role="user")
    Message.objects.filter(pk=stored.pk).update(created=stored.created - timedelta(minutes=5))
    second = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", kind="generated", content="- three\n- four"
    )
    Conversation.objects.filter(pk=conversation.pk).update(current=second)
    page.unroute("**/api/ask")
    page.route(
        "**/api/ask",
        lambda route: (
            sent.append(route.request.post_data_json),
            route.fulfill(status=200, content_type="text/event-stream", body=sse),
        ),
    )
    answer.locator("button", has_text="Ask again").click()
    page.locator(".msg.assistant", has_text="three").wait_for()
    assert sent[0]["again_of"] == question.pk and sent[0]["conversation_id"] == conversation.pk
    assert page.locator(".msg.user").count() == 1 and page.locator(".msg.assistant").count() == 1  # not a new turn
    versions = page.locator(".msg.assistant .versions")
    assert versions.locator(".version-count").inner_text() == "2/2"
    shoot(page, "versions-1280")
    versions.get_by_role("button", name="Previous version").click()
    page.locator(".msg.assistant", has_text="one").wait_for()
    assert versions.locator(".version-count").inner_text() == "1/2"
    page.reload()  # the version on show is kept
    assert page.locator(".msg.assistant .version-count").inner_text() == "1/2"
    assert "two" in page.locator(".msg.assistant .body").inner_text()
    stamp = page.locator(".msg.assistant .stamp")
    assert stamp.get_attribute("datetime") and ":" in stamp.inner_text()  # when it was written


def test_stop_ends_a_pending_answer(page, live_server, alice):  # noqa: F811
    log_in(page, live_server)
    page.route("**/api/ask", lambda route: None)  # never answers
    page.fill("#question", "What is the fee?")
    page.click("#send")
    assert page.locator("#send").inner_text() == "Stop"
    page.click("#send")
    page.locator(".msg.kind-stopped").wait_for()
    assert "Stopped" in page.locator(".msg.kind-stopped").inner_text()
    assert page.locator("#send").inner_text() == "Ask"


def test_conversations_are_renamed_and_deleted_from_the_sidebar(page, live_server, answered):  # noqa: F811
    conversation, _, document = answered
    log_in(page, live_server)
    assert "Card Handbook" in page.locator("#hint .documents").inner_text()  # the welcome lists what can be asked about
    page.locator(".suggestion").first.click()  # a suggested question fills the box
    assert page.locator("#question").input_value() == "What does Card Handbook say about booking?"
    shoot(page, "welcome-1280-light")
    item = page.locator(".sidebar li").first
    assert item.locator("time.date").is_visible()
    item.locator("summary").click()
    item.locator("input[name=title]").fill("Card fees, renamed")
    item.locator("button", has_text="Rename").click()
    page.locator(".sidebar a", has_text="Card fees, renamed").wait_for()
    assert page.url == live_server.url + "/"  # renamed from the welcome, it stays on the welcome
    page.locator(".sidebar a", has_text="Card fees, renamed").click()
    page.wait_for_url(live_server.url + f"/c/{conversation.pk}/")
    assert page.locator(".sidebar li.current a").inner_text() == "Card fees, renamed"
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.locator(".sidebar li.current summary").click()
    page.locator(".sidebar li.current button", has_text="Delete").click()
    page.wait_for_url(live_server.url + "/")
    assert dialogs == ["Delete this conversation and its answers?"]
    assert page.locator(".sidebar").inner_text().count("Card fees") == 0
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not page.console_messages, page.console_messages


def test_a_question_can_be_limited_to_one_collection(page, live_server, alice):  # noqa: F811
    make_document(Collection.objects.create(name="manuals"))
    private = Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    make_document(private, "secret.md", b"# Falcon", owner=alice)
    log_in(page, live_server)
    sent = []
    page.route("**/api/ask", lambda route: (sent.append(route.request.post_data_json), route.abort()))
    page.select_option("#collection", "alice-private")
    page.fill("#question", "When does Falcon launch?")
    page.keyboard.press("Enter")
    page.locator(".msg.error").wait_for()
    assert sent[0]["collection"] == ["alice-private"] and sent[0]["question"] == "When does Falcon launch?"
    shoot(page, "collection-picker-and-error-1280-light")


def test_the_theme_toggle_overrides_the_system_setting_and_is_kept(page, live_server, alice):  # noqa: F811
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/accounts/login/")
    shoot(page, "login-390-dark")
    page.set_viewport_size({"width": 1200, "height": 800})
    page.emulate_media(color_scheme="light")
    log_in(page, live_server)
    background = lambda: page.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
    assert background() == "rgb(245, 246, 248)"
    assert page.get_attribute("#theme", "aria-label") == "Use the dark theme"
    page.click("#theme")
    assert background() == "rgb(20, 23, 31)"
    page.reload()
    assert background() == "rgb(20, 23, 31)" and page.get_attribute("#theme", "aria-label") == "Use the light theme"
    shoot(page, "welcome-1280-dark-toggled")
    page.click("#theme")
    assert background() == "rgb(245, 246, 248)"
    assert not page.console_messages, page.console_messages


class SlowEngine(ScriptedEngine):
    """A word every 50 ms for 15 s; remembers how far it got and whether it was closed."""

    produced = 0
    closed = threading.Event()

    def pieces(self):
        try:
            for _ in range(300):
                time.sleep(0.05)
                SlowEngine.produced += 1
                yield "word "
        finally:
            SlowEngine.closed.set()


@pytest.mark.slow
def test_stop_halts_generation_on_the_server(page, live_server, alice, handbook_pdf, settings):  # noqa: F811
    settings.RAG_GENERATOR_ENGINE = "tests.e2e.test_chat_ui_browser.SlowEngine"
    SlowEngine.produced, SlowEngine.closed = 0, threading.Event()
    ingest_path(handbook_pdf)
    log_in(page, live_server)
    page.fill("#question", "What is the annual fee of the Gold card?")
    page.click("#send")
    page.locator(".msg.streaming").wait_for(timeout=120_000)
    # The model's words stream as a draft, not as the answer: they are not checked yet.
    assert "Draft: being checked" in page.locator(".msg.streaming .draft-note").inner_text()
    page.click("#send")  # Stop
    page.locator(".msg.kind-stopped").wait_for()
    assert page.locator(".draft-note").count() == 0
    assert "word" in page.locator(".msg.kind-stopped .body").inner_text()  # the partial answer stays
    assert SlowEngine.closed.wait(5), f"the engine was not closed ({SlowEngine.produced} words)"
    stopped_at = SlowEngine.produced
    time.sleep(1)
    assert SlowEngine.produced == stopped_at < 300
    # The stopped turn is stored: after a reload the question and the words so far are there, marked.
    page.locator(".msg.kind-stopped .stamp").wait_for()  # shown as stored (the server's copy)
    page.reload()
    assert page.locator(".msg.user .body").inner_text() == "What is the annual fee of the Gold card?"
    stopped = page.locator(".msg.assistant.kind-stopped")
    assert (
        "Stopped — the answer is incomplete" in stopped.inner_text() and "word" in stopped.locator(".body").inner_text()
    )
    assert stopped.locator("button", has_text="Ask again").is_visible()
    shoot(page, "stopped-after-reload-1280")


@pytest.mark.slow
def test_an_edited_question_branches_and_both_branches_stay(page, live_server, alice, handbook_pdf, settings):  # noqa: F811
    settings.RAG_GENERATOR_ENGINE = "tests.engines.FeeEngine"
    ingest_path(handbook_pdf)
    log_in(page, live_server)
    answers = page.locator(".msg.assistant[data-message-id]")
    for n, question in enumerate(["What is the annual fee of the Gold card?", "And the Silver card?"], start=1):
        page.fill("#question", question)
        page.keyboard.press("Enter")
        page.locator(f".msg.assistant[data-message-id] >> nth={n - 1}").wait_for(timeout=120_000)
        page.locator("#send", has_text="Ask").wait_for()
    assert page.locator(".msg.user").count() == 2 and answers.count() == 2
    # Edit the first question and send it: a new version; the Silver turn stays on the old branch.
    page.locator(".msg.user").first.get_by_role("button", name="Edit this question and send it again").click()
    editor = page.locator(".msg.user .edit-question textarea")
    assert editor.input_value() == "What is the annual fee of the Gold card?"
    editor.fill("What is the annual fee of the Platinum card?")
    page.keyboard.press("Enter")
    page.locator(".msg.user .version-count", has_text="2/2").wait_for(timeout=120_000)
    assert page.locator(".msg.user").count() == 1 and answers.count() == 1
    assert page.locator(".msg.user .body").inner_text() == "What is the annual fee of the Platinum card?"
    shoot(page, "edited-question-1280")
    page.locator(".msg.user").get_by_role("button", name="Previous version").click()
    page.locator(".msg.user .version-count", has_text="1/2").first.wait_for()
    assert [t.strip() for t in page.locator(".msg.user .body").all_inner_texts()] == [
        "What is the annual fee of the Gold card?",
        "And the Silver card?",
    ]
    page.reload()
    assert page.locator(".msg.user").count() == 2 and answers.count() == 2  # the branch on show is kept
    export = page.request.get(
        live_server.url + page.locator(".chat-tools a", has_text="Markdown").get_attribute("href")
    )
    text = export.text()
    assert "> What is the annual fee of the Gold card?" in text and "> And the Silver card?" in text
    assert "Platinum" not in text  # the branch on show, not the other
    # Shortcuts: the sheet, search, the question box.
    page.keyboard.press("Control+/")
    sheet = page.locator("#shortcuts")
    sheet.wait_for(state="visible")
    assert "New chat" in sheet.inner_text()
    shoot(page, "shortcuts-1280")
    page.keyboard.press("Escape")
    sheet.wait_for(state="hidden")
    page.keyboard.press("Control+k")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.press("Shift+Escape")
    assert page.evaluate("document.activeElement.id") == "question"
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "branch-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert not page.console_messages, page.console_messages


@pytest.fixture
def composed(alice):
    """Answers composed from several facts (generation/parts.py, the real
    composer): a two-part question with one part unanswered, a comparison as
    a list, and table rows as a table; each with its passage cited."""
    from generation import parts
    from generation.policy import Item

    public = Collection.objects.create(name="manuals", is_public=True)
    document = make_document(public, name="fees.md", data=b"# Fees\n", title="Fees and charges")
    fees = "The Gold card has an annual fee of 95 euros. The Platinum card has an annual fee of 250 euros."
    table = "| Account | Monthly fee |\n|---|---|\n| Everyday | 4 euros |\n| Premier | 15 euros |"
    chunks = [
        Chunk.objects.create(
            document=document,
            ordinal=i,
            text=text,
            heading=heading,
            char_start=0,
            char_end=len(text),
            content_hash=str(i) * 64,
        )
        for i, (text, heading) in enumerate([(fees, "Annual fees"), (table, "Fee table")])
    ]
    split = fees.index("The Platinum")
    gold = Item(fees[:split].strip(), "Fees", 0.8, source=chunks[0].pk)
    platinum = Item(fees[split:], "Fees", 0.78, source=chunks[0].pk)
    rows = [
        Item(table, "Fees", 0.8 - n / 100, quote=row, header="| Account | Monthly fee |", source=chunks[1].pk)
        for n, row in enumerate(table.splitlines()[2:])
    ]
    answers = {
        "How much is the Gold card fee and how many days does a replacement take?": (
            parts.compose(
                [
                    parts.Part("How much is the Gold card fee?", [gold], True, "amount"),
                    parts.Part("how many days does a replacement take?", [], False),
                ]
            ),
            [chunks[0]],
            parts.NOTICE,
        ),
        "compare the Gold and Platinum fees": (
            parts.compose_list([gold, platinum], "amount"),
            [chunks[0]],
            parts.LIST_NOTICE,
        ),
        "list the monthly account fees": (parts.compose_list(rows, "amount"), [chunks[1]], parts.LIST_NOTICE),
    }
    conversation = Conversation.objects.create(user=alice, title="Fees, composed")
    for question, (decision, cited, notice) in answers.items():
        Message.objects.create(conversation=conversation, role="user", content=question)
        answer = Message.objects.create(
            conversation=conversation, role="assistant", kind="quoted", content=decision.answer, notice=notice
        )
        for number, chunk in enumerate(cited, start=1):
            spans = [
                span for index, spans in decision.spans.items() if decision.numbers[index] == number for span in spans
            ]
            Citation.objects.create(
                message=answer,
                number=number,
                document=document,
                chunk=chunk,
                title=document.title,
                filename="fees.md",
                quote=chunk.text,
                spans=[list(s) for s in spans],
                highlight=[[0, len(chunk.text)]],
            )
    return conversation


def test_composed_answers_read_as_lists_and_tables_on_every_screen(page, live_server, composed):  # noqa: F811
    log_in(page, live_server, f"/c/{composed.pk}/")
    partial, comparison, table = (page.locator(".msg.assistant").nth(i) for i in range(3))
    items = partial.locator(".body li")
    assert items.count() == 2
    assert "95 euros" in items.nth(0).inner_text() and items.nth(0).locator("a.cite").inner_text() == "[1]"
    assert items.nth(1).inner_text().endswith("The documents do not answer this part.")
    assert comparison.locator(".body li").count() == 2 and comparison.locator(".body a.cite").count() == 2
    assert table.locator(".body table th").all_inner_texts() == ["Account", "Monthly fee"]
    cells = table.locator(".body table tbody tr").nth(1).locator("td")
    assert cells.nth(0).inner_text() == "Premier" and cells.nth(1).locator("a.cite").inner_text() == "[1]"
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width, height in ((1280, 800), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing scrolls sideways
            page.locator(".msg.user").first.scroll_into_view_if_needed()
            shoot(page, f"composed-partial-{width}-{scheme}")
            table.scroll_into_view_if_needed()
            shoot(page, f"composed-{width}-{scheme}")
            assert contrast(page, ".msg.assistant .body td") >= 4.5, (scheme, width)
    table.locator("a.cite").first.click()
    page.locator("#viewer").wait_for(state="visible")
    assert page.locator("#viewer mark").count() >= 1
    assert not page.console_messages, page.console_messages


def test_a_question_that_waits_says_how_many_are_ahead(page, live_server, alice, monkeypatch, settings):  # noqa: F811
    from generation.queueing import ANSWERS
    from tests import fakes

    fakes.install(monkeypatch, settings)
    settings.RAG_GENERATOR_ENGINE = "tests.engines.FeeEngine"
    settings.RAG_ANSWER_CONCURRENCY = 1
    log_in(page, live_server)
    held = [ANSWERS.join("another user")]  # the one answer place is taken
    try:
        for scheme, width in (("light", 1280), ("dark", 390)):
            page.emulate_media(color_scheme=scheme)
            page.set_viewport_size({"width": width, "height": 800})
            answers = page.locator(".msg.assistant:not(.pending)")
            before = answers.count()
            page.fill("#question", "What is the annual fee of the Gold card?")
            page.click("#send")
            waiting = page.locator(".msg.assistant.queued")
            waiting.wait_for()
            assert "Waiting: 1 question ahead of yours" in waiting.inner_text()
            shoot(page, f"queued-{width}-{scheme}")
            held.pop().leave()  # the answer ahead ends: this one starts and is answered
            waiting.wait_for(state="detached")
            page.wait_for_function(
                "n => document.querySelectorAll('.msg.assistant:not(.pending)').length > n", arg=before
            )
            deadline = time.monotonic() + 10
            while ANSWERS.depth() != (0, 0) and time.monotonic() < deadline:  # the stream closes after `done`
                time.sleep(0.05)
            held.append(ANSWERS.join("another user"))
    finally:
        for ticket in held:
            ticket.leave()


def test_an_ended_session_keeps_the_question_across_the_sign_in(page, live_server, alice):  # noqa: F811
    log_in(page, live_server)
    page.context.clear_cookies()  # signed out elsewhere, or the session expired
    question = "What is the annual fee of the Gold card?"
    page.fill("#question", question)
    page.press("#question", "Enter")
    alert = page.locator(".msg.assistant.error")
    alert.wait_for()
    assert "Your session has ended" in alert.inner_text()
    assert page.input_value("#question") == question  # nothing typed is lost
    assert page.locator(".msg.user").count() == 0  # it was not sent
    shoot(page, "session-ended-1280")
    alert.locator("a", has_text="sign in again").click()
    page.wait_for_url("**/accounts/login/?next=%2F")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    assert page.input_value("#question") == question  # ready to send


def test_the_error_and_sign_in_pages_on_a_phone(page, live_server, alice):  # noqa: F811
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "not-her-password")
    page.click("button[type=submit]")
    page.locator(".error").wait_for()
    assert page.input_value("#id_username") == "alice"
    assert page.evaluate("document.activeElement.id") == "id_password"
    shoot(page, "sign-in-failed-390")
    log_in(page, live_server)
    page.goto(live_server.url + "/c/999999/")
    back = page.locator("a", has_text="Back to your chats")
    assert back.is_visible() and page.locator("h1").inner_text() == "Not found"
    shoot(page, "not-found-390")
    back.click()
    page.wait_for_url(live_server.url + "/")


# An HTML page as uploaded: navigation, a script, styles and a long body before the cited sentence.
HTML_PAGE = (
    "<!doctype html><html><head><title>Travel policy</title><style>body{color:red}</style>"
    "<script>document.title='ran'</script></head><body><nav><a href='/home'>Home</a></nav>"
    "<h1>Travel policy</h1>"
    + "".join(f"<p>Section {i}: routine rules about receipts and approvals for trip {i}.</p>" for i in range(40))
    + "<h2>Booking</h2><p>Economy class is the rule for flights <em>under six hours</em>; business class needs "
    "approval.</p><img src=x onerror=\"document.title='img'\"><p>The end.</p></body></html>"
)
CITED_HTML = "Economy class is the rule for flights under six hours; business class needs approval."


def cited_answer(user, document, quote):
    """An answer citing `quote`, all of it after its heading highlighted."""
    conversation = Conversation.objects.create(user=user, title="Which class?")
    Message.objects.create(conversation=conversation, role="user", content="Which class may I fly?")
    answer = Message.objects.create(
        conversation=conversation, role="assistant", kind="generated", content="Economy under six hours [1]."
    )
    start = quote.index("\n\n") + 2
    Citation.objects.create(
        message=answer,
        number=1,
        document=document,
        title=document.title,
        filename=document.original_filename,
        quote=quote,
        highlight=[[start, len(quote)]],
    )
    return conversation


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize(
    ("name", "data", "quote"),
    [
        (
            "policy.html",
            HTML_PAGE.encode(),
            "## Booking\n\n" + CITED_HTML.replace("under six hours", "*under six hours*"),
        ),
        (
            "policy.md",
            (
                "# Travel policy\n\n"
                + "\n\n".join(f"Section {i}: routine rules." for i in range(40))
                + "\n\n## Booking\n\nEconomy class is the rule for flights under six hours;\n"
                "business class needs approval.\n"
            ).encode(),
            "## Booking\n\n" + CITED_HTML,
        ),
    ],
)
def test_an_html_or_markdown_original_is_rendered_and_scrolled_to_the_cited_sentence(
    page,  # noqa: F811
    live_server,
    alice,
    name,
    data,
    quote,
    width,
):
    public = Collection.objects.create(name="policies", is_public=True)
    document = make_document(public, name=name, data=data, title="Travel Policy")
    conversation = cited_answer(alice, document, quote)
    page.set_viewport_size({"width": width, "height": 844 if width < 500 else 800})
    log_in(page, live_server, f"/c/{conversation.pk}/")
    page.locator(".msg.assistant a.cite").first.click()
    viewer = page.locator("#viewer")
    mark = viewer.locator("#original-body mark.cited")
    mark.first.wait_for()
    assert " ".join("".join(mark.all_text_contents()).split()) == CITED_HTML
    body = viewer.locator("#original-body")
    inside = body.evaluate(
        """b => { const r = b.querySelector("mark.cited").getBoundingClientRect(), o = b.getBoundingClientRect();
                  return r.top >= o.top && r.bottom <= o.bottom && b.scrollTop > 0; }"""
    )
    assert inside  # scrolled down to it, and it is in view
    on_screen = viewer.evaluate(
        """v => { const r = v.querySelector("mark.cited").getBoundingClientRect(), o = v.getBoundingClientRect();
                  return r.top >= o.top && r.bottom <= o.bottom; }"""
    )
    assert on_screen  # and the panel (a sheet on the phone) shows it
    text = body.inner_text()
    assert "Travel policy" in text and "<p>" not in text and "<h1>" not in text  # rendered, not source
    assert body.locator("h2").first.inner_text() == "Booking"
    assert body.locator("script, style, img").count() == 0
    assert page.title() != "ran" and page.title() != "img"  # nothing of the page ran
    if name.endswith(".html"):
        assert body.locator("a").first.get_attribute("href") is None  # a link into this site is dropped
    shoot(page, f"original-{name.split('.')[1]}-{width}")
    viewer.get_by_role("button", name="Full screen").click()
    mark.first.wait_for()
    shoot(page, f"original-{name.split('.')[1]}-full-{width}")
    assert not page.console_messages, page.console_messages


def test_the_sidebar_searches_as_you_type_and_keeps_its_forms_in_view(page, live_server, answered, alice):  # noqa: F811
    conversation, _, _ = answered
    other = Conversation.objects.create(user=alice, title="A conversation with a title long enough to be cut short")
    Message.objects.create(conversation=other, role="user", content="Which lounges can I use at the airport?")
    log_in(page, live_server)
    items = page.locator("#conversations > li")
    assert items.count() == 2
    long = page.locator("#conversations a", has_text="long enough")
    assert long.get_attribute("title") == other.title  # the whole title on hover
    page.locator("#search").press_sequentially("waived", delay=30)
    page.locator("#conversations .snippet mark").wait_for()
    assert items.count() == 1 and page.locator("#conversations a").inner_text() == "What are the card fees?"
    assert "waived" in page.locator("#conversations .snippet").inner_text()  # the matching turn, marked
    assert "1 conversation matches" in page.locator("#searching").inner_text()
    shoot(page, "sidebar-search-1280")
    page.fill("#search", "")
    page.locator("#searching").wait_for(state="hidden")
    assert items.count() == 2
    # Edit: the form fits the sidebar, and renaming from the welcome stays on the welcome.
    first = items.first
    first.locator("summary").click()
    sidebar = page.locator("#sidebar").bounding_box()
    for part in ("summary", "button.small >> nth=0", "button.danger", "input[name=title]"):
        box = first.locator(part).bounding_box()
        assert box["x"] >= sidebar["x"] and box["x"] + box["width"] <= sidebar["x"] + sidebar["width"], part
    assert page.evaluate(
        "document.getElementById('sidebar').scrollWidth <= document.getElementById('sidebar').clientWidth"
    )
    shoot(page, "sidebar-edit-1280")
    first.locator("input[name=title]").fill("Renamed here")
    first.locator("button", has_text="Rename").click()
    page.wait_for_load_state()
    assert page.url == live_server.url + "/" and page.locator("#hint").is_visible()
    assert page.locator("#conversations a", has_text="Renamed here").count() == 1
    # A chat started on the page gets its date and Edit at once.
    started = Conversation.objects.create(user=alice, title="New one")
    Message.objects.create(conversation=started, role="user", content="New one")
    reply = Message.objects.create(conversation=started, role="assistant", kind="not_found", content="Not there.")
    sse = "".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n"
        for name, data in [
            ("start", {"conversation_id": started.pk, "query": "New one"}),
            ("done", {"conversation_id": started.pk, "message_id": reply.pk, "answer": "Not there.", "citations": []}),
        ]
    )
    page.route("**/api/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=sse))
    page.fill("#question", "New one")
    page.keyboard.press("Enter")
    page.locator(".msg.assistant[data-message-id]").wait_for()
    live = page.locator("#conversations li.current")
    assert live.locator("a").inner_text() == "New one" and live.locator("time").inner_text()
    assert live.locator("form.rename").get_attribute("action") == f"/c/{started.pk}/rename/"
    live.locator("summary").click()
    live.locator("input[name=title]").fill("Named at once")
    live.locator("button", has_text="Rename").click()
    page.wait_for_url(live_server.url + f"/c/{started.pk}/")
    assert page.locator("#conversations li.current a").inner_text() == "Named at once"
    assert not page.console_messages, page.console_messages
