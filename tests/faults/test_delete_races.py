"""Deletes racing the work on the same document (issue #26, M6): concurrent
identical uploads and deletes gave 500s (a foreign key on PostgreSQL: chunks
written while the document was deleted) and left `check_index` with vectors
of deleted chunks. A delete now locks the document's row first, as a worker
writing its chunks does, and an index write keeps only the vectors of chunks
that still exist, so whichever comes first, nothing is left behind."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import pytest
from django.db import connection, connections, transaction

from ingestion import services
from ingestion.models import Chunk, Document
from retrieval import indexing
from tests import fakes
from tests.adversarial.conftest import FEES
from tests.conftest import ingest_path


@pytest.fixture
def models(transactional_db, monkeypatch, settings, eager_tasks, isolated_storage):
    """Committed transactions (deletes run their on-commit removals) and the stand-in models."""
    fakes.install(monkeypatch, settings)
    yield
    connections.close_all()


def clean(report: dict) -> bool:
    return not any(report[key] for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"))


def test_a_document_deleted_as_its_vectors_are_written_leaves_none_behind(models, tmp_path, monkeypatch):
    path = tmp_path / "fees.md"
    path.write_text(FEES)
    document = ingest_path(path)
    chunk_ids = list(document.chunks.values_list("pk", flat=True))
    services.reindex(document)
    indexing.remove_chunks(chunk_ids)  # so that indexing embeds them again
    real_progress = indexing.ingestion.record_progress
    calls = []

    def progress_then_delete(document_id, embedded):
        real_progress(document_id, embedded)
        calls.append(embedded)
        if len(calls) == 2:  # the embeddings are made, the last heartbeat passed: the write is next
            Document.objects.get(pk=document_id).delete()  # and its removal runs (eager) before it

    monkeypatch.setattr(indexing.ingestion, "record_progress", progress_then_delete)
    Document.objects.filter(pk=document.pk).update(status=Document.Status.EMBEDDING)
    indexing.index_document(document.pk)
    assert len(calls) == 2 and not Document.objects.filter(pk=document.pk).exists()
    report = indexing.check_index()
    assert clean(report), report
    assert not set(chunk_ids) & set(indexing.get_store().current().ids().tolist())


@pytest.mark.skipif("sqlite" in connection.vendor, reason="row locks are PostgreSQL's (SQLite writes one at a time)")
def test_a_delete_waits_for_the_worker_writing_its_chunks_and_takes_them_too(models, tmp_path):
    path = tmp_path / "fees.md"
    path.write_text(FEES)
    document = ingest_path(path)
    locked, errors = threading.Event(), []

    def worker_writes_chunks():  # as replace_chunks does: the row locked, chunks written, then commit
        try:
            with transaction.atomic():
                Document.objects.select_for_update().get(pk=document.pk)
                locked.set()
                Chunk.objects.create(
                    document_id=document.pk,
                    ordinal=99,
                    text="A new passage.",
                    content_hash="x",
                    char_start=0,
                    char_end=14,
                )
                time.sleep(0.5)
        finally:
            connections.close_all()

    def user_deletes():
        locked.wait(5)
        try:
            Document.objects.get(pk=document.pk).delete()
        except Exception as error:  # the audit's foreign key violation
            errors.append(repr(error))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(worker_writes_chunks), pool.submit(user_deletes)]
        for future in futures:
            future.result()
    assert errors == []
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Chunk.objects.filter(document_id=document.pk).exists()


def test_identical_uploads_racing_deletes_fail_nothing_and_leave_the_index_clean(models, tmp_path):
    collection = services.get_collection(None)
    errors = []

    def upload(n):
        try:
            services.add_document(BytesIO(FEES.encode()), "fees.md", collection=collection)
        except Exception as error:
            errors.append(f"upload: {error!r}")
        finally:
            connections.close_all()

    def delete(n):
        try:
            for document in Document.objects.filter(collection=collection):
                document.delete()
        except Exception as error:
            errors.append(f"delete: {error!r}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(6) as pool:
        for n in range(30):
            pool.submit(upload, n)
            pool.submit(delete, n)
    assert errors == [], errors[:5]
    for document in Document.objects.all():  # an upload that outlived the deletes is whole
        assert document.status == Document.Status.INDEXED and document.file.storage.exists(document.file.name)
    report = indexing.check_index()
    assert clean(report), {k: v for k, v in report.items() if v}
