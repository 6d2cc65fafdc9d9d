"""The source viewer's originals (chat/originals.py) and where a cited
sentence is on its PDF page (chat/pdfpage.py's sentence_boxes), through
the views that serve them to the owner of the answer and no one else."""

import pytest

from chat import originals
from generation.models import Citation, Conversation, Message
from ingestion.models import Collection
from tests.ingestion.test_parsing import make_docx
from tests.pdfs import make_pdf
from tests.test_chat_ui import cite_handbook_and_a_withdrawn_leaflet, make_document


def test_an_html_page_is_reduced_to_its_document():
    shown = originals.sanitised_page(
        "<html><head><title>Page title</title><style>p{color:red}</style><script>alert(1)</script></head>"
        "<body><nav><a href='/inside'>Home</a></nav><h1 onclick='x()' style='color:red'>Policy</h1>"
        "<p>See <a href='https://example.com/a'>this</a> or <a href='javascript:alert(1)'>that</a>.</p>"
        "<img src='https://tracker.example/x.gif'><form><input name=q></form><iframe src='https://e.com'>f</iframe>"
        "<table><tr><th colspan=2>Fees</th></tr><tr><td>Gold</td><td>95</td></tr></table></body></html>"
    )
    assert "<h1>Policy</h1>" in shown  # no event handler, no style
    assert '<a href="https://example.com/a" target="_blank" rel="noopener noreferrer nofollow">this</a>' in shown
    for gone in ("Page title", "color:red", "alert", "<img", "<input", "<form", "<iframe", "/inside", "javascript"):
        assert gone not in shown
    assert '<th colspan="2">Fees</th>' in shown


def test_markdown_text_and_word_originals_are_rendered(tmp_path):
    markdown = tmp_path / "guide.md"
    markdown.write_text("# Fees\n\n- Gold: **95 euros**\n\n<script>alert(1)</script>\n")
    shown = originals.shown(markdown, "guide.md")
    assert (
        shown["format"] == "markdown"
        and "<h1>Fees</h1>" in shown["html"]
        and "<strong>95 euros</strong>" in shown["html"]
    )
    assert "<script>" not in shown["html"]  # written tags are text
    text = tmp_path / "notes.txt"
    text.write_text("Line <b>one</b>\n  indented")
    assert originals.shown(text, "notes.txt")["html"] == (
        '<pre class="original-text">Line &lt;b&gt;one&lt;/b&gt;\n  indented</pre>'
    )
    word = originals.shown(make_docx(tmp_path / "guide.docx"), "guide.docx")
    assert word["format"] == "docx" and "<h1>Fees</h1>" in word["html"] and "<td>Gold | VIP</td>" in word["html"]
    assert originals.shown(tmp_path / "any.pdf", "any.pdf") == {"format": "pdf", "html": ""}


def test_what_cannot_be_shown_says_why(tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    monkeypatch.setattr(originals, "MAX_SHOWN_BYTES", 1000)
    with pytest.raises(originals.NotShown, match="too large to show here"):
        originals.shown(big, "big.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(originals.NotShown, match="looks binary"):
        originals.shown(binary, "binary.txt")
    with pytest.raises(originals.NotShown, match="not shown here"):
        originals.shown(binary, "setup.exe")


@pytest.fixture
def cited_pdf(alice, tmp_path):
    public = Collection.objects.create(name="manuals", is_public=True)
    pdf = make_pdf(
        tmp_path / "handbook.pdf",
        ["Cover", "Booking\n\nSilver: no fee.\n\nThe Gold card fee is waived in the first year."],
    )
    document = make_document(public, data=pdf.read_bytes())
    conversation = Conversation.objects.create(user=alice, title="Fees")
    answer = Message.objects.create(
        conversation=conversation, role="assistant", kind="generated", content="Waived [1]."
    )
    cite_handbook_and_a_withdrawn_leaflet(answer, document)
    return Citation.objects.get(message=answer, number=1), document


def test_the_boxes_of_a_cited_sentence_are_on_its_page(client, alice, cited_pdf):
    citation, document = cited_pdf
    client.force_login(alice)
    data = client.get(f"/citations/{citation.pk}/boxes").json()
    assert data["page"] == 2 and data["width"] > 500 and data["height"] > 700  # a Letter or A4 page, in points
    assert data["boxes"], data
    for left, bottom, right, top in data["boxes"]:
        assert 0 <= left < right <= data["width"] and 0 <= bottom < top <= data["height"]
    # One line of text: the boxes share a baseline, about a line high, and span most of the sentence.
    assert max(b[3] for b in data["boxes"]) - min(b[1] for b in data["boxes"]) < 30
    assert max(b[2] for b in data["boxes"]) - min(b[0] for b in data["boxes"]) > 150


def test_boxes_and_originals_are_for_those_who_may_read_them(client, alice, bob, cited_pdf, tmp_path):
    citation, document = cited_pdf
    client.force_login(bob)  # may read the public document, but the answer is alice's
    assert client.get(f"/citations/{citation.pk}/boxes").status_code == 404
    assert client.get(f"/documents/{document.pk}/original").json() == {"format": "pdf", "html": ""}
    private = Collection.objects.create(name="alice's", is_public=False)
    secret = make_document(private, name="secret.md", data=b"# Secret\n\nThe code is 1234.", title="Secret")
    assert client.get(f"/documents/{secret.pk}/original").status_code == 404
    client.logout()
    assert client.get(f"/documents/{document.pk}/original").status_code == 302  # to the sign-in


def test_the_original_of_a_missing_file_says_so(client, alice, cited_pdf):
    _, document = cited_pdf
    document.file.storage.delete(document.file.name)
    client.force_login(alice)
    data = client.get(f"/documents/{document.pk}/original").json()
    assert data == {"format": "", "html": "", "reason": "The file of this document is missing."}


def test_citations_say_how_their_original_is_shown(client, alice, cited_pdf):
    citation, document = cited_pdf
    client.force_login(alice)
    shown = client.get(f"/c/{citation.message.conversation_id}/").context["history"][0]["citations"]
    assert shown[0]["format"] == "pdf" and shown[0]["original_url"] == f"/documents/{document.pk}/file"
    assert shown[0]["boxes_url"] == f"/citations/{citation.pk}/boxes"
    assert shown[1]["format"] == "" and shown[1]["original_url"] == "" and shown[1]["boxes_url"] == ""  # withdrawn
