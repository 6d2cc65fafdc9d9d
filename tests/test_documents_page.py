"""The documents page (/documents/, chat/library.py): what a user may ask
about, with first-page thumbnails, found by what the documents say or by
name, each opening or narrowing the next questions to it; nothing of a
collection the user may not read."""

import io

import pytest
from PIL import Image

from ingestion.models import Document

pytestmark = pytest.mark.django_db


def page_of(client, user, **query):
    client.force_login(user)
    response = client.get("/documents/", query)
    assert response.status_code == 200
    return response.content.decode()


def test_it_lists_the_readable_documents_with_size_pages_and_actions(client, bob, handbook, private_note):
    html = page_of(client, bob)
    assert "Card Handbook" in html and "handbook.pdf" in html and "3 pages" in html
    assert f"/?about={handbook.pk}" in html and f"/documents/{handbook.pk}/thumbnail.png" in html
    assert "Project Falcon" not in html and "secret-project" not in html  # alice's private collection
    assert "1 document" in html


def test_a_content_search_finds_the_document_that_says_it_with_the_passage(client, alice, handbook, private_note):
    html = page_of(client, alice, q="Diamond card launch date")
    assert "Project Falcon" in html and html.index("Project Falcon") < html.find("Card Handbook") + len(html)
    first_card = html[html.index("library-card") :][:1500]
    assert "Project Falcon" in first_card  # best first
    assert "launches the Diamond card on 3 March" in html  # the passage that matched
    assert "match “Diamond card launch date”" in html


def test_a_search_by_name_finds_a_document_its_text_does_not(client, bob, handbook):
    assert "Card Handbook" in page_of(client, bob, q="handbook.pdf")
    assert "No document says" in page_of(client, bob, q="zzqx-nothing-like-it")


def test_the_thumbnail_is_the_first_page_drawn_small_and_kept(client, bob, handbook, settings):
    client.force_login(bob)
    response = client.get(f"/documents/{handbook.pk}/thumbnail.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.width == 240 and 240 < image.height <= 720
    assert list((settings.DATA_DIR / "thumbnails").glob(f"{handbook.sha256}-240.png"))  # drawn once, kept


def test_no_thumbnail_of_what_the_user_may_not_read_or_of_a_text_file(client, bob, alice, private_note):
    client.force_login(bob)
    assert client.get(f"/documents/{private_note.pk}/thumbnail.png").status_code == 404  # not bob's to read
    client.force_login(alice)
    assert client.get(f"/documents/{private_note.pk}/thumbnail.png").status_code == 404  # Markdown: no pages
    assert "MD" in page_of(client, alice)  # its card says what it is instead


def test_ask_about_it_opens_the_chat_narrowed_to_the_document(client, bob, handbook, private_note):
    client.force_login(bob)
    html = client.get("/", {"about": handbook.pk}).content.decode()
    assert f'data-about-id="{handbook.pk}"' in html and 'data-about-title="Card Handbook"' in html
    for foreign in (private_note.pk, 10**30, "x"):  # another's, too large, not a number: the plain chat
        assert "data-about-id" not in client.get("/", {"about": foreign}).content.decode()


def test_documents_not_yet_read_or_failed_are_listed_and_say_so(client, bob, handbook):
    Document.objects.filter(pk=handbook.pk).update(status="failed", error="The PDF is damaged.")
    html = page_of(client, bob)
    assert "Could not be read: The PDF is damaged." in html and f"/?about={handbook.pk}" not in html


def test_hostile_titles_and_queries_are_text(client, bob, handbook):
    Document.objects.filter(pk=handbook.pk).update(title='<img src=x onerror="alert(1)">')
    html = page_of(client, bob, q="<script>alert(1)</script>")
    assert "<script>alert(1)" not in html and "<img src=x onerror" not in html
    client.force_login(bob)
    assert client.get("/documents/", {"q": "fee\x00"}).status_code == 400  # a NUL is refused, not a 500


def test_the_documents_come_a_page_at_a_time(client, bob):
    from ingestion.models import Collection
    from tests.test_chat_ui import make_document

    shelf = Collection.objects.create(name="shelf", is_public=True)
    for n in range(30):
        make_document(shelf, name=f"note-{n:02}.md", data=b"# Note\n\nText.", title=f"Note {n:02}")
    first, second = page_of(client, bob), page_of(client, bob, page=2)
    assert "30 documents" in first and first.count('class="library-card"') == 24 and "Page 1 of 2" in first
    assert second.count('class="library-card"') == 6 and "Note 00" in second and "Note 29" in first  # newest first
