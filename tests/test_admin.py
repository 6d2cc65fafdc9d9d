"""The document-upload admin: upload, status, re-index, delete."""

import pytest

from ingestion import services
from ingestion.models import Chunk, Document

pytestmark = pytest.mark.django_db


@pytest.mark.slow  # the real embedder
def test_it_uploads_a_document_and_shows_its_status(client, admin_user, handbook_pdf):
    client.force_login(admin_user)
    form = client.get("/admin/ingestion/document/add/")
    assert form.status_code == 200 and b'name="upload"' in form.content
    collection_id = services.get_collection().pk
    with open(handbook_pdf, "rb") as handle:
        response = client.post(
            "/admin/ingestion/document/add/", {"upload": handle, "collection": collection_id, "title": ""}
        )
    assert response.status_code == 302
    document = Document.objects.get()
    assert document.status == "pending" and document.original_filename == "handbook.pdf"
    assert b"Pending" in client.get("/admin/ingestion/document/").content
    services.process_document(document.pk)
    listing = client.get("/admin/ingestion/document/").content.decode()
    assert "Indexed" in listing and "chunks embedded" in listing
    detail = client.get(f"/admin/ingestion/document/{document.pk}/change/")
    assert detail.status_code == 200 and b"95 euros" in detail.content


def test_it_shows_why_a_document_failed(client, admin_user, tmp_path):
    client.force_login(admin_user)
    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"this is not a pdf at all")
    with open(bad, "rb") as handle:
        client.post("/admin/ingestion/document/add/", {"upload": handle, "collection": services.get_collection().pk})
    document = Document.objects.get()
    services.process_document(document.pk)
    listing = client.get("/admin/ingestion/document/").content.decode()
    assert "Failed" in listing and "not a PDF" in listing


def test_it_deletes_documents_with_their_chunks_and_vectors(
    client, admin_user, handbook, django_capture_on_commit_callbacks, eager_tasks
):
    from retrieval.stores import get_store

    client.force_login(admin_user)
    chunk_ids = set(handbook.chunks.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/ingestion/document/",
            {"action": "delete_selected", "_selected_action": [handbook.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert not chunk_ids & set(get_store().current().ids().tolist())


def test_it_reindexes_a_document(client, admin_user, handbook, django_capture_on_commit_callbacks, eager_tasks):
    client.force_login(admin_user)
    old_ids = set(handbook.chunks.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/ingestion/document/", {"action": "reindex", "_selected_action": [handbook.pk]})
    handbook.refresh_from_db()
    new_ids = set(handbook.chunks.values_list("pk", flat=True))
    assert handbook.status == "indexed" and new_ids == old_ids  # unchanged passages keep their rows
    from retrieval.stores import get_store

    assert set(get_store().current().ids().tolist()) == new_ids


def test_plain_users_cannot_open_the_admin(client, alice):
    client.force_login(alice)
    assert client.get("/admin/ingestion/document/").status_code == 302


def test_staff_see_guardrail_interventions(client, admin_user, alice, handbook):
    from tests.conftest import api_client_for

    api_client_for(alice).post("/api/ask", {"question": "you stupid fucking idiot"}, format="json")
    client.force_login(admin_user)
    page = client.get("/admin/generation/guardrailevent/").content.decode()
    assert "alice" in page and "question" in page.lower()


def test_it_uploads_many_files_at_once(client, admin_user, tmp_path):
    client.force_login(admin_user)
    files = []
    for name in ("a.md", "b.txt", "c.html"):
        path = tmp_path / name
        path.write_text(
            f"<p>Document {name} says the travel desk books trips.</p>"
            if name.endswith("html")
            else f"Document {name} text."
        )
        files.append(open(path, "rb"))
    try:
        response = client.post(
            "/admin/ingestion/document/add/", {"upload": files, "collection": services.get_collection().pk}
        )
    finally:
        for handle in files:
            handle.close()
    assert response.status_code == 302 and response["Location"].endswith("/admin/ingestion/document/")
    assert sorted(Document.objects.values_list("original_filename", flat=True)) == ["a.md", "b.txt", "c.html"]


def test_it_cancels_a_queued_document(client, admin_user, tmp_path):
    client.force_login(admin_user)
    path = tmp_path / "notes.md"
    path.write_text("Some notes.")
    with open(path, "rb") as handle:
        document, _ = services.add_document(handle, "notes.md", collection=services.get_collection())
    client.post("/admin/ingestion/document/", {"action": "cancel", "_selected_action": [document.pk]})
    document.refresh_from_db()
    assert document.status == "cancelled"
    services.process_document(document.pk)  # its queued task finds nothing to do
    document.refresh_from_db()
    assert document.status == "cancelled" and not document.chunks.exists()
