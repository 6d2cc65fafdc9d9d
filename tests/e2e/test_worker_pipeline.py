"""End to end through a real worker: upload a real PDF over the API, the
worker parses and embeds it, then search and ask find and cite the passage
that holds the answer; bad files fail alone; delete removes the vectors."""

import shutil
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from core.broker import workers_online
from ingestion.models import Chunk, Document
from retrieval.stores import get_store
from tests.conftest import api_client_for
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_it_ingests_searches_asks_and_deletes_through_a_worker(worker, admin_user, handbook_pdf):
    client = api_client_for(admin_user)
    with open(handbook_pdf, "rb") as handle:
        response = client.post(
            "/api/documents/", {"file": SimpleUploadedFile("handbook.pdf", handle.read())}, format="multipart"
        )
    assert response.status_code == 202
    doc_id = response.json()["id"]
    upload = lambda name, data: client.post(  # noqa: E731
        "/api/documents/", {"file": SimpleUploadedFile(name, data)}, format="multipart"
    )
    # A type the parser does not read is refused at upload, with the reason.
    refused = upload("slides.pptx", b"PK\x03\x04")
    assert refused.status_code == 400 and "Unsupported file type .pptx" in str(refused.json())
    # Bad files of a supported type are taken, and fail alone in the worker.
    bad = {
        name: upload(name, data).json()["id"]
        for name, data in {
            "empty.txt": b"",
            "broken.pdf": handbook_pdf.read_bytes()[:200],
            # An image is read by OCR (make ocr-deps installs Tesseract; without it, it is refused at upload).
            **({"broken.png": b"\x89PNG\r\n\x1a\n not an image"} if shutil.which("tesseract") else {}),
        }.items()
    }

    def finished():
        docs = {d["id"]: d for d in (client.get(f"/api/documents/{pk}/").json() for pk in [doc_id, *bad.values()])}
        return docs if all(d["status"] in ("indexed", "failed") for d in docs.values()) else None

    docs = wait_until(finished, 240, "the worker to finish the uploads", worker)
    assert docs[doc_id]["status"] == "indexed", docs[doc_id]
    assert docs[doc_id]["pages"] == 3 and docs[doc_id]["chunks_embedded"] == docs[doc_id]["chunks_total"] > 0
    reasons = {name: docs[pk]["error"] for name, pk in bad.items()}
    assert all(docs[pk]["status"] == "failed" for pk in bad.values())
    assert "empty" in reasons["empty.txt"] and "PDF" in reasons["broken.pdf"]
    assert "image" in reasons.get("broken.png", "image")

    hits = client.get("/api/search", {"q": "How much is the Gold card's yearly fee?", "k": 3}).json()["results"]
    answer_chunk = Chunk.objects.get(document_id=doc_id, text__contains="95 euros")
    assert hits[0]["chunk_id"] == answer_chunk.pk and hits[0]["page"] == 2

    body = client.post("/api/ask", {"question": "What is the annual fee of the Gold card?"}, format="json").json()
    assert body["found"] and "[1]" in body["answer"]
    assert body["citations"][0]["chunk_id"] == answer_chunk.pk
    assert body["citations"][0]["page"] == 2 and body["citations"][0]["filename"] == "handbook.pdf"

    chunk_ids = set(Chunk.objects.filter(document_id=doc_id).values_list("pk", flat=True))
    assert client.delete(f"/api/documents/{doc_id}/").status_code == 204
    assert not Chunk.objects.filter(pk__in=chunk_ids).exists()
    wait_until(
        lambda: not chunk_ids & set(get_store().current().ids().tolist()),
        60,
        "the worker to remove the vectors",
        worker,
    )
    assert "retrieval.tasks.remove_vectors" in worker.log_path.read_text()


def test_cli_ingest_waits_for_a_running_worker(worker, tmp_path):
    note = tmp_path / "desk.md"
    note.write_text("# Travel desk\n\nThe travel desk books all trips at least 14 days before departure.\n")
    # "ready." in the log comes before the worker's broadcast subscription on
    # Redis is live: a ping sent at once can go unheard. The command decides by
    # a ping, so wait until one is answered (an idle worker answers in ms).
    wait_until(workers_online, 60, "the worker to answer a ping", worker, interval=0.2)
    out = StringIO()
    call_command("ingest", str(note), stdout=out)
    assert "A worker is running" in out.getvalue()
    assert "indexed 1" in out.getvalue()
    document = Document.objects.get()
    assert document.status == "indexed"
    assert "Task ingestion.tasks.process_document" in worker.log_path.read_text()
