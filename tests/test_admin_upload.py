"""The document admin's upload form and look: the site's own name and
favicon, unsupported types refused at upload with the reason, and messages
that count new documents and duplicates. No model runs (nothing is indexed)."""

import re
import shutil

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from ingestion import services
from ingestion.models import Chunk, Document
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

ADD = "/admin/ingestion/document/add/"


def upload(client, *files, **extra):
    return client.post(ADD, {"upload": list(files), "collection": services.get_collection().pk, **extra})


def stored_files(settings):
    return (
        [p for p in (settings.MEDIA_ROOT / "documents").rglob("*") if p.is_file()]
        if (settings.MEDIA_ROOT / "documents").exists()
        else []
    )


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/admin/ingestion/document/", ADD])
def test_admin_pages_have_the_sites_name_favicon_and_colours(client, admin_user, path):
    if path != "/admin/login/":
        client.force_login(admin_user)
    html = client.get(path).content.decode()
    assert "Ask your documents — admin" in html and "Django administration" not in html
    assert "Django site admin" not in html
    assert 'rel="icon" href="/static/ragsite/favicon.svg"' in html
    assert 'href="/static/ragsite/admin-theme.css"' in html


TEXT_TYPES = ".docx,.htm,.html,.markdown,.md,.pdf,.text,.txt,.xhtml"


def test_the_file_picker_offers_the_supported_types(client, admin_user, settings):
    client.force_login(admin_user)
    settings.RAG_OCR_TESSERACT = "/nonexistent/tesseract"  # no OCR: no images
    html = client.get(ADD).content.decode()
    assert f'accept="{TEXT_TYPES}"' in html
    assert "Markdown or plain text, up to" in html


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed (make ocr-deps)")
def test_with_ocr_the_file_picker_offers_images_too(client, admin_user):
    client.force_login(admin_user)
    html = client.get(ADD).content.decode()
    assert 'accept=".docx,.htm,.html,.jpeg,.jpg,.markdown,.md,.pdf,.png,.text,.tif,.tiff,.txt,.xhtml"' in html
    assert "plain text or images of pages (PNG, JPEG, TIFF), up to" in html


def test_without_ocr_an_image_is_refused_at_upload_with_the_reason(client, admin_user, settings):
    settings.RAG_OCR_TESSERACT = "/nonexistent/tesseract"
    client.force_login(admin_user)
    html = upload(client, SimpleUploadedFile("scan.png", b"\x89PNG\r\n\x1a\n")).content.decode()
    assert "scan.png: An image is read by OCR. OCR is not available on this server: Tesseract" in html
    response = api_client_for(admin_user).post(
        "/api/documents/", {"file": SimpleUploadedFile("scan.jpg", b"\xff\xd8\xff")}, format="multipart"
    )
    assert response.status_code == 400
    assert "not installed" in response.json()["file"][0]
    assert not Document.objects.exists() and stored_files(settings) == []


def test_an_unsupported_type_is_refused_at_upload_with_the_reason(client, admin_user, settings):
    client.force_login(admin_user)
    response = upload(client, SimpleUploadedFile("prices.csv", b"card,fee\ngold,95\n"))
    assert response.status_code == 200  # the form again, with the error
    html = response.content.decode()
    assert f"prices.csv: Unsupported file type .csv. Upload {services.readable_types()[1]}." in html
    assert not Document.objects.exists() and stored_files(settings) == []


def test_a_refused_file_does_not_drop_the_valid_ones_chosen_with_it(client, admin_user, settings):
    client.force_login(admin_user)
    response = upload(
        client, SimpleUploadedFile("notes.md", b"# Notes\n\nFine.\n"), SimpleUploadedFile("README", b"hi")
    )
    assert response.status_code == 302
    assert list(Document.objects.values_list("original_filename", flat=True)) == ["notes.md"]
    said = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any(m.startswith("Not uploaded: README: Unsupported file type (no extension)") for m in said), said
    assert any("1 new document queued" in m for m in said), said


def test_the_list_fits_its_columns_and_searches_the_text(client, admin_user):
    document, _ = services.add_document(
        SimpleUploadedFile("lounges.md", b"# Lounges\n\nPlatinum holders use the lounges.\n"),
        "lounges.md",
        collection=services.get_collection(),
    )
    Chunk.objects.create(
        document=document,
        ordinal=0,
        text="Platinum holders use the lounges.",
        char_start=0,
        char_end=33,
        content_hash="0" * 64,
    )  # as the parser leaves it (no model runs here)
    client.force_login(admin_user)
    listing = client.get("/admin/ingestion/document/").content.decode()
    assert "lounges.md · 45\xa0bytes" in listing  # the file and its size
    columns = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', listing)
    assert columns == ["title", "collection", "status_badge", "progress", "file_summary", "added"], columns
    found = client.get("/admin/ingestion/document/?q=Platinum+holders").content.decode()
    assert "lounges.md" in found  # words of the text, not only of the title
    assert "lounges.md" not in client.get("/admin/ingestion/document/?q=zeppelin").content.decode()


def test_the_message_counts_new_documents_and_duplicates(client, admin_user):
    existing, _ = services.add_document(
        SimpleUploadedFile("fees.md", b"# Fees\n\nGold: 95 euros.\n"), "fees.md", collection=services.get_collection()
    )
    client.force_login(admin_user)
    response = upload(
        client,
        SimpleUploadedFile("fees-copy.md", b"# Fees\n\nGold: 95 euros.\n"),
        SimpleUploadedFile("lounges.md", b"# Lounges\n\nPlatinum only.\n"),
    )
    assert response.status_code == 302 and response["Location"] == "/admin/ingestion/document/"
    said = [m.message for m in get_messages(response.wsgi_request)]
    assert said[0] == "1 new document queued for indexing; 1 duplicate of a document already uploaded, not added again."
    assert said[1] == f"fees-copy.md is the same file as “{existing.title}” in {existing.collection} (pending)."
    assert not any("2 documents" in text or "added successfully" in text for text in said)
    assert Document.objects.count() == 2


def test_a_lone_duplicate_is_not_reported_as_added(client, admin_user):
    services.add_document(SimpleUploadedFile("fees.md", b"same"), "fees.md", collection=services.get_collection())
    client.force_login(admin_user)
    response = upload(client, SimpleUploadedFile("again.md", b"same"))
    said = [m.message for m in get_messages(response.wsgi_request)]
    assert said[0] == "1 duplicate of a document already uploaded, not added again."
    assert Document.objects.count() == 1


def test_save_and_add_another_returns_to_the_form(client, admin_user):
    client.force_login(admin_user)
    response = upload(client, SimpleUploadedFile("a.md", b"# A\n"), _addanother="1")
    assert response.status_code == 302 and response["Location"] == ADD


def test_the_api_refuses_an_unsupported_type_at_upload(admin_user, settings):
    response = api_client_for(admin_user).post(
        "/api/documents/", {"file": SimpleUploadedFile("tool.exe", b"MZ\x90\x00")}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["file"] == [f"tool.exe: Unsupported file type .exe. Upload {services.readable_types()[1]}."]
    assert not Document.objects.exists() and stored_files(settings) == []


def make_document(collection, title, status="pending", **fields):
    return Document.objects.create(
        collection=collection,
        title=title,
        sha256=title.ljust(64, "0")[:64],
        status=status,
        original_filename=f"{title}.md",
        file=f"documents/{title}.md",
        **fields,
    )


def test_the_list_and_the_form_load_the_live_script(client, admin_user):
    client.force_login(admin_user)
    for path in ("/admin/ingestion/document/", ADD):
        assert "ragsite/admin-documents.js" in client.get(path).content.decode(), path


def test_the_progress_view_gives_the_cells_the_list_shows(client, admin_user):
    from ingestion.models import Collection

    manuals = Collection.objects.create(name="manuals")
    running = make_document(manuals, "running", status="embedding", chunks_total=10, chunks_embedded=4)
    broken = make_document(manuals, "broken", status="failed", error="Damaged PDF.")
    client.force_login(admin_user)
    response = client.get("/admin/ingestion/document/progress/", {"ids": f"{running.pk},{broken.pk},999999,x"})
    assert response.status_code == 200
    documents = response.json()["documents"]
    assert set(documents) == {str(running.pk), str(broken.pk)}
    assert documents[str(running.pk)]["progress"] == "4/10 chunks embedded"
    assert documents[str(running.pk)]["finished"] is False
    assert 'data-status="embedding"' in documents[str(running.pk)]["status_badge"]
    assert documents[str(broken.pk)] | {"status_badge": ""} == {
        "status": "failed",
        "finished": True,
        "progress": "Damaged PDF.",
        "status_badge": "",
    }


def test_the_progress_view_shows_only_what_the_user_may_see(client, alice, bob, settings):
    from django.contrib.auth.models import Permission

    from ingestion.models import Collection

    hidden = make_document(Collection.objects.create(name="bob-only", is_public=False, owner=bob), "hidden")
    client.force_login(alice)  # not staff: the admin's login page
    assert client.get("/admin/ingestion/document/progress/", {"ids": hidden.pk}).status_code == 302
    alice.is_staff = True
    alice.save()
    assert (
        client.get("/admin/ingestion/document/progress/", {"ids": hidden.pk}).status_code == 403
    )  # no view permission
    alice.user_permissions.add(Permission.objects.get(codename="view_document"))
    response = client.get("/admin/ingestion/document/progress/", {"ids": hidden.pk})
    assert response.status_code == 200 and response.json() == {"documents": {}}
