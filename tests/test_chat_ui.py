"""The chat page's server side: answers and passages rendered as sanitised
Markdown with their citation links and highlight, the stored answer fetched
after a stream, and the original files served to those who may read them."""

import io
import json
from html.parser import HTMLParser

import pytest
from django.core.files.base import ContentFile

from chat.rendering import render
from generation.models import Citation, Conversation, Message
from ingestion.models import Collection, Document

PASSAGE = "## Booking\n\nYou can book online.\n\n- Silver: no fee\n- Gold: 95 euros a year\n\nThe Gold card fee is waived in the first year."
HOSTILE = "<script>alert('passage')</script> Fees <img src=x onerror=alert('img')> [x](javascript:alert(1)) **bold**"


def make_document(collection, name="handbook.pdf", data=b"%PDF-1.4 not really", title="Card Handbook", owner=None):
    document = Document(
        collection=collection,
        title=title,
        original_filename=name,
        sha256=name.ljust(64, "0")[:64],
        size=len(data),
        status=Document.Status.INDEXED,
        owner=owner,
    )
    document.file.save(name, ContentFile(data), save=True)
    return document


def cite_handbook_and_a_withdrawn_leaflet(answer, document, chunk=None):
    """[1] the handbook's passage with its last sentence highlighted; [2] a
    passage of a document since deleted."""
    start = PASSAGE.index("The Gold card fee")
    Citation.objects.create(
        message=answer,
        number=1,
        document=document,
        chunk=chunk,
        title="Card Handbook",
        filename="handbook.pdf",
        page=2,
        quote=PASSAGE,
        highlight=[[start, len(PASSAGE)]],
    )
    Citation.objects.create(
        message=answer,
        number=2,
        document=None,
        title="Old Leaflet",
        filename="leaflet.pdf",
        page=1,
        quote="",
        withdrawn=True,
    )


@pytest.fixture
def public(db):
    return Collection.objects.create(name="manuals", is_public=True)


@pytest.fixture
def answered(alice, public):
    """Alice's conversation: a question and an answer citing two passages."""
    document = make_document(public)
    conversation = Conversation.objects.create(user=alice, title="Fees")
    Message.objects.create(conversation=conversation, role="user", content="What are the fees?")
    answer = Message.objects.create(
        conversation=conversation,
        role="assistant",
        kind="generated",
        content="The fees:\n\n- Gold: **95 euros** [1]\n- Silver: none [2]\n\nSee [3].",
    )
    cite_handbook_and_a_withdrawn_leaflet(answer, document)
    return conversation, answer, document


def history(response):
    """What the page hands chat.js (the json_script data), as chat.js reads it."""
    return json.loads(json.dumps(response.context["history"]))


def test_it_renders_an_answer_as_markdown_with_citation_links(client, alice, answered):
    conversation, answer, _ = answered
    client.force_login(alice)
    response = client.get(f"/c/{conversation.pk}/")
    assert response.status_code == 200
    shown = history(response)[1]
    assert "<li>Gold: <strong>95 euros</strong> " in shown["html"]
    assert f'<a class="cite" href="#src-{answer.pk}-1" data-cite="1">[1]</a>' in shown["html"]
    assert "See [3]." in shown["html"]  # a number no source has stays text


def test_it_renders_a_passage_as_markdown_with_the_cited_sentence_highlighted(client, alice, answered):
    conversation, _, document = answered
    client.force_login(alice)
    cited = history(client.get(f"/c/{conversation.pk}/"))[1]["citations"][0]
    assert "<h2>Booking</h2>" in cited["quote_html"]
    assert "<li>Gold: 95 euros a year</li>" in cited["quote_html"]
    assert "<p><mark>The Gold card fee is waived in the first year.</mark></p>" in cited["quote_html"]
    assert cited["file_url"] == f"/documents/{document.pk}/file#page=2"


def test_a_withdrawn_citation_has_no_passage_and_no_file(client, alice, answered):
    conversation, _, _ = answered
    client.force_login(alice)
    cited = history(client.get(f"/c/{conversation.pk}/"))[1]["citations"][1]
    assert cited["withdrawn"] is True and cited["quote_html"] == "" and cited["file_url"] == ""


class Markup(HTMLParser):
    """The elements and attributes of an HTML fragment."""

    def __init__(self, html):
        super().__init__()
        self.tags, self.attributes = set(), set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes |= {(tag, name, value) for name, value in attrs}


def test_it_lets_no_markup_from_documents_or_the_model_through():
    for html in (render(HOSTILE), render(HOSTILE, highlight=[[0, len(HOSTILE)]], citations=[1])):
        markup = Markup(html)
        assert markup.tags <= {"p", "strong", "mark"} and markup.attributes == set()
        assert "&lt;script&gt;" in html and "&lt;img src=x onerror" in html  # shown as text
    links = Markup(render("[x](javascript:alert(1)) [y](https://example.com) <a href='javascript:alert(1)'>z</a>"))
    assert links.attributes == {("a", "href", "https://example.com"), ("a", "rel", "noopener noreferrer nofollow")}
    assert "style" not in {
        name for _, name, _ in Markup(render("| a | b |\n|:-|-:|\n| 1 | 2 |")).attributes
    }  # the CSP forbids it


def test_a_highlight_over_a_list_keeps_the_list_and_balanced_tags():
    text = "Intro.\n\n- one\n- two\n\nAfter."
    html = render(text, highlight=[[text.index("- one"), text.index("After")]])
    assert "<ul>\n<li><mark>one</mark></li>\n<li><mark>two</mark></li>\n</ul>" in html
    assert html.count("<mark>") == html.count("</mark>")


def test_a_highlighted_table_row_keeps_its_cells_in_their_columns():
    text = "Fees:\n\n| Account | Fee |\n|---|---|\n| Basic | 0 |\n| Gold | 95 |\n"
    html = " ".join(render(text, highlight=[(text.index("| Gold"), text.index("95 |") + 4)]).split())
    # Was "<td></td> <td><mark>Gold</mark></td>": the mark before the row's pipe emptied its first cell.
    assert "<tr> <td><mark>Gold</mark></td> <td><mark>95</mark></td> </tr>" in html
    assert "<tr> <td>Basic</td> <td>0</td> </tr>" in html


def test_it_serves_the_stored_answer_rendered_to_its_owner_only(client, alice, bob, answered):
    conversation, answer, _ = answered
    client.force_login(alice)
    response = client.get(f"/c/{conversation.pk}/m/{answer.pk}/")
    assert response.status_code == 200
    assert response.json()["html"].startswith("<p>The fees:</p>")
    client.force_login(bob)
    assert client.get(f"/c/{conversation.pk}/m/{answer.pk}/").status_code == 404


def test_it_serves_an_original_pdf_inline_to_a_reader(client, bob, answered):
    _, _, document = answered
    client.force_login(bob)  # a public collection: every signed-in user reads it
    response = client.get(f"/documents/{document.pk}/file")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline") and "handbook.pdf" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == b"%PDF-1.4 not really"


def test_it_serves_a_stored_web_page_as_text(client, alice, public):
    document = make_document(public, "page.html", b"<script>alert(1)</script>")
    client.force_login(alice)
    response = client.get(f"/documents/{document.pk}/file")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "sandbox" in response["Content-Security-Policy"]


def test_another_users_private_document_is_not_served(client, alice, bob):
    private = Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    document = make_document(private, "secret.md", b"# Falcon", owner=alice)
    client.force_login(bob)
    assert client.get(f"/documents/{document.pk}/file").status_code == 404
    client.force_login(alice)
    assert client.get(f"/documents/{document.pk}/file").status_code == 200


def test_an_original_needs_a_login(client, answered):
    _, _, document = answered
    response = client.get(f"/documents/{document.pk}/file")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_renames_a_conversation_for_its_owner_only(client, alice, bob, answered):
    conversation, _, _ = answered
    client.force_login(bob)
    assert client.post(f"/c/{conversation.pk}/rename/", {"title": "Bob's now"}).status_code == 404
    client.force_login(alice)
    assert client.get(f"/c/{conversation.pk}/rename/").status_code == 405
    response = client.post(f"/c/{conversation.pk}/rename/", {"title": "  Card   fees\n2026 "})
    assert response.status_code == 302 and response["Location"] == f"/c/{conversation.pk}/"
    conversation.refresh_from_db()
    assert conversation.title == "Card fees 2026"
    client.post(f"/c/{conversation.pk}/rename/", {"title": "   "})  # an empty title is no title: kept
    conversation.refresh_from_db()
    assert conversation.title == "Card fees 2026"


def test_it_deletes_a_conversation_for_its_owner_only(client, alice, bob, answered):
    conversation, answer, _ = answered
    client.force_login(bob)
    assert client.post(f"/c/{conversation.pk}/delete/").status_code == 404
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    client.force_login(alice)
    response = client.post(f"/c/{conversation.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert (
        not Message.objects.filter(pk=answer.pk).exists() and not Citation.objects.filter(message_id=answer.pk).exists()
    )


def test_renaming_and_deleting_need_the_csrf_token(alice, answered):
    from django.test import Client

    conversation, _, _ = answered
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(f"/c/{conversation.pk}/delete/").status_code == 403
    assert client.post(f"/c/{conversation.pk}/rename/", {"title": "x"}).status_code == 403
    assert Conversation.objects.get(pk=conversation.pk).title == "Fees"


def test_the_sidebar_shows_dates_and_the_forms_to_manage_each_conversation(client, alice, answered):
    conversation, _, _ = answered
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert f'action="/c/{conversation.pk}/rename/"' in page and f'action="/c/{conversation.pk}/delete/"' in page
    assert f'datetime="{conversation.updated.isoformat()}"' in page


def test_a_new_account_is_welcomed_with_the_documents_it_can_ask_about(client, alice, bob, public):
    make_document(public, "handbook.pdf", title="Card Handbook")
    private = Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    make_document(private, "secret.md", b"# Falcon", title="Project Falcon", owner=alice)
    client.force_login(bob)
    page = client.get("/").content.decode()
    assert "You can ask about 1 document:" in page and "Card Handbook" in page and "Project Falcon" not in page
    client.force_login(alice)
    assert "You can ask about 2 documents:" in client.get("/").content.decode()


def test_an_account_with_nothing_to_read_is_told_so(client, alice, admin_user):
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "There are no documents you can ask about yet." in page and "/admin/" not in page
    client.force_login(admin_user)
    assert 'href="/admin/ingestion/document/add/">Upload documents</a>' in client.get("/").content.decode()


def test_it_searches_conversations_by_title_and_content(client, alice, bob, answered):
    conversation, _, _ = answered
    other = Conversation.objects.create(user=alice, title="Lounges")
    Message.objects.create(conversation=other, role="user", content="Which card has airport lounge access?")
    Conversation.objects.create(user=bob, title="Bob's airport question")
    client.force_login(alice)
    listed = lambda q: [c.pk for c in client.get("/", {"q": q}).context["conversations"]]  # noqa: E731
    assert listed("AIRPORT") == [other.pk]  # by content, any case; not bob's
    assert listed("fees") == [conversation.pk]  # by title
    assert listed("95 euros") == [conversation.pk]  # by an answer's text
    assert "No conversation matches." in client.get("/", {"q": "zeppelin"}).content.decode()


def test_a_citation_carries_its_passage_heading(client, alice, answered):
    from ingestion.models import Chunk

    conversation, answer, document = answered
    chunk = Chunk.objects.create(
        document=document,
        ordinal=0,
        text=PASSAGE,
        page=2,
        heading="Fees › Booking",
        char_start=0,
        char_end=len(PASSAGE),
        content_hash="0" * 64,
    )
    answer.citations.filter(number=1).update(chunk=chunk)
    client.force_login(alice)
    assert history(client.get(f"/c/{conversation.pk}/"))[1]["citations"][0]["heading"] == "Fees › Booking"


def test_the_collection_picker_lists_readable_collections_with_documents(client, alice, bob, public):
    make_document(public, "handbook.pdf")
    private = Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    make_document(private, "secret.md", b"# Falcon", owner=alice)
    client.force_login(alice)
    assert client.get("/").context["collections"] == ["alice-private", "manuals"]
    client.force_login(bob)  # one collection: nothing to pick
    assert client.get("/").context["collections"] == []


def test_it_shows_the_cited_pdf_page_with_the_sentence_highlighted_to_the_answers_owner(
    client, alice, bob, answered, tmp_path
):
    from tests.conftest import HANDBOOK_PAGES
    from tests.pdfs import make_pdf

    conversation, answer, document = answered
    document.file.save(
        "handbook.pdf", ContentFile(make_pdf(tmp_path / "h.pdf", HANDBOOK_PAGES).read_bytes()), save=True
    )
    sentence = "The Gold card has an annual fee of 95 euros"
    answer.citations.filter(number=1).update(
        quote=HANDBOOK_PAGES[1], highlight=[[HANDBOOK_PAGES[1].index(sentence), len(HANDBOOK_PAGES[1])]]
    )
    client.force_login(alice)
    cited = history(client.get(f"/c/{conversation.pk}/"))[1]["citations"]
    assert cited[1]["page_image_url"] == ""  # withdrawn
    response = client.get(cited[0]["page_image_url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    client.force_login(bob)  # not his answer
    assert client.get(cited[0]["page_image_url"]).status_code == 404


def test_the_page_image_marks_the_sentence(tmp_path):
    import numpy as np
    from PIL import Image

    from chat.pdfpage import render_page
    from tests.conftest import HANDBOOK_PAGES
    from tests.pdfs import make_pdf

    pdf = make_pdf(tmp_path / "h.pdf", HANDBOOK_PAGES)

    def yellow(png):  # pixels of the highlight's colour
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        return int(((rgb[..., 0] > 240) & (rgb[..., 1] > 200) & (rgb[..., 2] < 200)).sum())

    assert yellow(render_page(pdf, 2, "")) == 0
    assert (
        yellow(render_page(pdf, 2, "The Gold card has an annual fee of 95 euros, which is waived in the first year."))
        > 1000
    )
    assert (
        yellow(render_page(pdf, 2, "The Gold card costs nothing at all, ever.")) == 0
    )  # not on the page: nothing marked


def test_the_passages_around_one_are_served_to_readers_only(client, alice, bob):
    from ingestion.models import Chunk

    private = Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    document = make_document(private, "notes.md", b"x", owner=alice)
    chunks = [
        Chunk.objects.create(
            document=document,
            ordinal=i,
            text=f"Part **{i}**",
            page=None,
            heading="Notes",
            char_start=0,
            char_end=5,
            content_hash=str(i) * 64,
        )
        for i in range(3)
    ]
    client.force_login(alice)
    around = client.get(f"/passages/{chunks[1].pk}/around/").json()
    assert around["before"]["html"] == "<p>Part <strong>0</strong></p>\n" and around["after"]["heading"] == "Notes"
    assert client.get(f"/passages/{chunks[0].pk}/around/").json()["before"] is None
    client.force_login(bob)
    assert client.get(f"/passages/{chunks[1].pk}/around/").status_code == 404


def test_the_welcome_suggests_questions_from_the_documents_headings(client, alice, public):
    from ingestion.models import Chunk

    document = make_document(public, "handbook.pdf", title="Card Handbook")
    for ordinal, heading in enumerate(["Card Handbook", "", "Card Handbook › Annual fees"]):
        Chunk.objects.create(
            document=document,
            ordinal=ordinal,
            text="x",
            heading=heading,
            char_start=0,
            char_end=1,
            content_hash=str(ordinal) * 64,
        )
    client.force_login(alice)
    response = client.get("/")
    assert response.context["suggestions"] == ["What does Card Handbook say about annual fees?"]
    assert 'data-question="What does Card Handbook say about annual fees?"' in response.content.decode()


def test_a_poster_sized_page_is_drawn_within_bounds(tmp_path):
    from fpdf import FPDF
    from PIL import Image

    from chat.pdfpage import MAX_SIDE, render_page

    pdf = FPDF(unit="pt", format=(14400, 14400))  # PDF's largest page: 200 inches a side
    pdf.add_page()
    pdf.set_font("Helvetica", size=200)
    pdf.text(100, 400, "The Gold card has an annual fee of 95 euros.")
    pdf.output(str(tmp_path / "poster.pdf"))
    image = Image.open(io.BytesIO(render_page(tmp_path / "poster.pdf", 1, "The Gold card has an annual fee")))
    assert max(image.size) <= MAX_SIDE


def test_conversations_with_the_same_title_are_numbered_in_the_sidebar(client, alice):
    first = Conversation.objects.create(user=alice, title="What is the fee?")
    Conversation.objects.create(user=alice, title="Lounges")
    second = Conversation.objects.create(user=alice, title="what is the fee?")
    client.force_login(alice)
    labels = {c.pk: c.label for c in client.get("/").context["conversations"]}
    assert labels[first.pk] == "What is the fee?" and labels[second.pk] == "what is the fee? (2)"
    assert "Lounges" in labels.values()


def test_conversations_are_found_as_you_type_with_a_snippet_of_the_turn(client, alice, bob, answered):
    from chat.services import snippet

    conversation, _, _ = answered
    client.force_login(alice)
    results = client.get("/c/search?q=SILVER").json()["results"]
    assert [r["id"] for r in results] == [conversation.pk]
    assert results[0]["snippet"].startswith("…") and "Silver: none" in results[0]["snippet"]
    assert "**" not in results[0]["snippet"] and "[1]" not in results[0]["snippet"]  # markup is not what one reads
    assert client.get("/c/search?q=").json()["results"] == []
    client.force_login(bob)
    assert client.get("/c/search?q=silver").json()["results"] == []  # another user's turns stay theirs
    assert snippet("short text", "text") == "short text"
    assert snippet("x " * 100 + "the match here" + " y" * 100, "match").startswith("…x x x")


def test_renaming_returns_to_the_page_it_was_done_on_but_never_off_the_site(client, alice, answered):
    conversation, _, _ = answered
    client.force_login(alice)
    response = client.post(f"/c/{conversation.pk}/rename/", {"title": "New", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    response = client.post(f"/c/{conversation.pk}/rename/", {"title": "New", "next": "https://evil.example/"})
    assert response["Location"] == f"/c/{conversation.pk}/"


def test_suggested_questions_read_as_a_person_would_ask_them():
    from chat.suggestions import suggested

    documents = [
        (
            "Northwind Travel Policy",
            ["Northwind Travel Policy", "Northwind Travel Policy > Booking", "1. Introduction"],
        ),
        ("support-faq", ["Contents", "How to reset your password", "Is there a mobile app?"]),
        ("Card Handbook", ["Card Handbook › 2.1 VPN access", "Card Handbook › Annual fees"]),
    ]
    assert suggested(documents) == [
        "What does Northwind Travel Policy say about booking?",
        "How do I reset my password?",
        "What does Card Handbook say about VPN access?",
    ]
    long_title = "The Complete and Unabridged Guide to Every Benefit of Our Cards"
    assert suggested([(long_title, ["Lounge access"])]) == ["What do the documents say about lounge access?"]
    assert suggested([("Notes", ["Notes", "Contents", "12", "Glossary"])]) == []  # nothing worth asking


def test_the_viewer_is_given_pdfjs_character_maps_and_its_text_layer_rules(client, alice):
    # CJK text in a PDF whose fonts are not embedded needs PDF.js's packed character maps.
    import re

    from django.contrib.staticfiles import finders

    client.force_login(alice)
    html = client.get("/").content.decode()
    cmaps = re.search(r'data-pdfjs-cmaps="([^"]+)"', html).group(1)
    assert cmaps.endswith("/vendor/pdfjs/cmaps/")
    for name in ("UniGB-UCS2-H.bcmap", "UniJIS-UTF16-H.bcmap", "UniKS-UTF16-H.bcmap", "Adobe-CNS1-UCS2.bcmap"):
        assert finders.find(f"ragsite/vendor/pdfjs/cmaps/{name}"), name
    assert "vendor/pdfjs/text_layer.css" in html and finders.find("ragsite/vendor/pdfjs/text_layer.css")
