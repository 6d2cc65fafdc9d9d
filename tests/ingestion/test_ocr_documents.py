"""OCR'd documents through the product (issue #31), on the real Tesseract: a
scanned PDF and a PNG upload become documents with passages, their
searchable copy stored and shown by the viewer (the cited sentence boxed on
its page), what OCR said of each page stored and a low page marked in the
admin; a new version replaces the copy and a delete removes it; a PNG upload
is found by search."""

import shutil

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.models import Citation, Conversation, Message
from ingestion import services, storage
from ingestion.models import Document
from tests.conftest import api_client_for, ingest_path
from tests.ingestion.test_ocr import POLICY, SENTENCE
from tests.scans import make_page_image, make_scanned_pdf

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed (make ocr-deps)"),
]


@pytest.fixture
def parse_only(monkeypatch):
    """Documents stop once their passages are stored (no embedder)."""
    monkeypatch.setattr(services.document_chunked, "send", lambda **kwargs: [])


def process(path, name=None):
    collection = services.get_collection()
    with open(path, "rb") as handle:
        document, _ = services.add_document(handle, name or path.name, collection=collection)
    services.process_document(document.pk)
    document.refresh_from_db()
    return document


def cite(document, user, sentence=SENTENCE):
    """A stored answer citing the passage of `document` that holds `sentence`, the sentence highlighted."""
    chunk = document.chunks.get(text__contains=sentence)
    conversation = Conversation.objects.create(user=user, title="Hotels?")
    answer = Message.objects.create(conversation=conversation, role="assistant", kind="generated", content="x [1]")
    start = chunk.text.index(sentence)
    return Citation.objects.create(
        message=answer,
        number=1,
        document=document,
        chunk=chunk,
        title=document.title,
        filename=document.original_filename,
        page=chunk.page,
        quote=chunk.text,
        highlight=[[start, start + len(sentence)]],
    )


def test_a_scanned_pdf_is_indexed_and_its_sentence_boxed_in_the_viewer(parse_only, client, alice, tmp_path):
    document = process(make_scanned_pdf(tmp_path / "travel-policy.pdf", POLICY))
    assert document.status == Document.Status.EMBEDDING, document.error  # parsed and chunked, ready for vectors
    assert [page["page"] for page in document.ocr_pages] == [1, 2]
    assert document.ocr_lowest > 80
    assert document.searchable_file.name.endswith(".pdf") and document.searchable_file.name != document.file.name
    assert any("140 euros in Paris" in chunk.text for chunk in document.chunks.all())
    client.force_login(alice)
    served = client.get(f"/documents/{document.pk}/file")
    assert served["Content-Type"] == "application/pdf"
    assert b"".join(served.streaming_content) == storage.shown_path(document).read_bytes()
    citation = cite(document, alice)
    boxes = client.get(f"/citations/{citation.pk}/boxes").json()
    assert boxes["page"] == 2 and boxes["boxes"]
    assert client.get(f"/citations/{citation.pk}/page.png").headers["Content-Type"] == "image/png"


def test_a_png_is_shown_as_its_searchable_pdf(parse_only, client, alice, tmp_path):
    document = process(make_page_image(tmp_path / "hotels.png", POLICY[1:]))
    assert document.shown_filename == "hotels.pdf"
    client.force_login(alice)
    served = client.get(f"/documents/{document.pk}/file")
    assert served["Content-Type"] == "application/pdf"
    citation = cite(document, alice)
    assert client.get(f"/citations/{citation.pk}/boxes").json()["boxes"]
    from chat.services import citation_dict

    shown = citation_dict(citation)
    assert shown["format"] == "pdf" and shown["boxes_url"] and shown["file_url"].endswith("#page=1")
    assert shown["ocr_confidence"] > 80  # the viewer says the text came from a scan


def test_a_low_confidence_page_is_marked_in_the_admin(parse_only, client, admin_user, settings, tmp_path):
    document = process(make_scanned_pdf(tmp_path / "scan.pdf", POLICY))
    settings.RAG_OCR_LOW_CONFIDENCE = 100  # every page is below it
    client.force_login(admin_user)
    listing = client.get("/admin/ingestion/document/").content.decode()
    assert "OCR: 2 pages low" in listing
    assert "rag-ocr-low" in listing
    assert client.get("/admin/ingestion/document/?ocr=low").content.decode().count("scan.pdf") >= 1
    page = client.get(f"/admin/ingestion/document/{document.pk}/change/").content.decode()
    assert "2 pages read by OCR (eng), mean confidence" in page
    assert "Below 100%: page 1" in page
    settings.RAG_OCR_LOW_CONFIDENCE = 10
    assert "OCR: 2 pages low" not in client.get("/admin/ingestion/document/").content.decode()
    assert "scan.pdf" not in client.get("/admin/ingestion/document/?ocr=low").content.decode()


def test_a_new_version_replaces_the_searchable_copy_and_a_delete_removes_it(
    parse_only, settings, tmp_path, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        document = process(make_scanned_pdf(tmp_path / "policy.pdf", POLICY))
    first = settings.MEDIA_ROOT / document.searchable_file.name
    assert first.exists()
    (tmp_path / "v2").mkdir()
    changed = make_scanned_pdf(tmp_path / "v2" / "policy.pdf", [POLICY[0], POLICY[1].replace("140", "160")])
    with django_capture_on_commit_callbacks(execute=True):
        again = process(changed)
    assert again.pk == document.pk
    assert any("160 euros in Paris" in chunk.text for chunk in again.chunks.all())
    second = settings.MEDIA_ROOT / again.searchable_file.name
    assert second.exists() and not first.exists()
    with django_capture_on_commit_callbacks(execute=True):
        again.delete()
    assert not second.exists()
    assert not list((settings.MEDIA_ROOT / "tmp").glob("*"))  # nothing left behind


@pytest.mark.slow
def test_a_png_upload_is_searchable(admin_user, tmp_path):
    image = make_page_image(tmp_path / "hotels.png", POLICY[1:])
    response = api_client_for(admin_user).post(
        "/api/documents/",
        {"file": SimpleUploadedFile("hotels.png", image.read_bytes(), content_type="image/png")},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    document = ingest_path(image)  # the same bytes: the same document, processed here
    assert document.status == Document.Status.INDEXED, document.error
    hits = api_client_for(admin_user).get("/api/search", {"q": "how much is a hotel night refunded in Paris"}).json()
    assert hits["results"][0]["document_id"] == document.pk
    assert "140 euros" in hits["results"][0]["text"]
