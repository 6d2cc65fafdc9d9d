"""Ingestion services on the real database: dedup, versions, claims, cancel, retries."""

from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest
from django.db import OperationalError
from django.utils import timezone

from ingestion import services, sweeps
from ingestion.models import Chunk, Document
from retrieval.search import search
from retrieval.stores import get_store
from tests.conftest import ingest_path

pytestmark = pytest.mark.django_db

V1 = b"# Fees\n\nThe Gold card costs 95 euros a year.\n\n# Insurance\n\nPlatinum includes lounge access.\n"
V2 = b"# Fees\n\nThe Gold card costs 120 euros a year.\n\n# Insurance\n\nPlatinum includes lounge access.\n"


def upload(data: bytes, name="fees.md"):
    document, created = services.add_document(BytesIO(data), name, collection=services.get_collection())
    return document, created


def test_it_stores_the_same_bytes_once():
    first, created = upload(V1)
    again, created_again = upload(V1, name="copy-of-fees.md")
    assert created and not created_again and again.pk == first.pk
    assert Document.objects.count() == 1


@pytest.mark.slow  # the real embedder
def test_a_changed_file_replaces_the_old_versions_chunks_and_vectors(eager_tasks, django_capture_on_commit_callbacks):
    document, _ = upload(V1)
    services.process_document(document.pk)
    before = {c.ordinal: c for c in Chunk.objects.filter(document=document)}
    with django_capture_on_commit_callbacks(execute=True):
        replaced, created = upload(V2)
    assert created and replaced.pk == document.pk
    replaced.refresh_from_db()
    assert replaced.status == "indexed" and replaced.sha256 != document.sha256
    after = {c.ordinal: c for c in Chunk.objects.filter(document=document)}
    assert "120 euros" in after[0].text and after[0].pk != before[0].pk  # changed passage: new row
    assert after[1].pk == before[1].pk  # unchanged passage: same row, same vector
    assert set(get_store().current().ids().tolist()) == {c.pk for c in after.values()}
    assert "120 euros" in search("Gold card price per year", k=1)[0].text


def test_a_claimed_document_is_not_processed_twice():
    document, _ = upload(V1)
    assert services.claim(document.pk)
    assert not services.claim(document.pk)
    services.process_document(document.pk)  # a second delivery of the task: a no-op
    document.refresh_from_db()
    assert document.status == "parsing" and not Chunk.objects.exists()


@pytest.mark.slow  # the real embedder
def test_every_state_change_stamps_updated_so_a_reindexed_document_is_not_requeued_at_once(eager_tasks):
    """Issue #13 item 3: reindex() on a document last saved longer than the
    claim timeout ago left `updated` old, and the next recovery sweep queued
    it a second time."""
    document, _ = upload(V1)
    services.process_document(document.pk)
    long_ago = document.created.replace(year=2000)
    Document.objects.filter(pk=document.pk).update(updated=long_ago)
    services.reindex(Document.objects.get(pk=document.pk))
    assert Document.objects.get(pk=document.pk).updated > long_ago
    assert sweeps.requeue_unfinished() == 0
    for change in (
        lambda: services.claim(document.pk),
        lambda: services.release(document.pk),
        lambda: services.cancel(document),
        lambda: services.mark_failed(document.pk, "bad"),
    ):
        Document.objects.filter(pk=document.pk).update(updated=long_ago)
        change()
        assert Document.objects.get(pk=document.pk).updated > long_ago


def test_a_worker_that_stopped_saying_it_is_alive_is_taken_over_long_before_the_claim_timeout(settings):
    # The audit's L5: a worker killed with SIGKILL left its document for the whole 15-minute claim timeout.
    document, _ = upload(V1)
    assert services.claim(document.pk)
    services.record_parse_heartbeat(document.pk)
    assert sweeps.requeue_unfinished() == 0  # alive
    settings.RAG_HEARTBEAT_TIMEOUT = 1
    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=2))
    assert sweeps.requeue_unfinished() == 1  # silent past the heartbeat timeout: dead
    document.refresh_from_db()
    assert document.status == "pending" and document.heartbeat_at is None


def test_a_document_waiting_in_the_index_queue_is_not_taken_for_a_dead_workers(settings):
    document, _ = upload(V1)
    settings.RAG_HEARTBEAT_TIMEOUT = 1
    long_ago = timezone.now() - timedelta(seconds=60)  # chunked a minute ago, within the claim timeout
    Document.objects.filter(pk=document.pk).update(status="embedding", claimed_at=long_ago, heartbeat_at=None)
    assert sweeps.requeue_unfinished() == 0
    settings.RAG_CLAIM_TIMEOUT = 30  # waiting longer than the claim timeout: lost
    assert sweeps.requeue_unfinished() == 1


@pytest.mark.slow  # the real embedder
def test_a_dead_workers_claim_is_taken_over(settings):
    document, _ = upload(V1)
    assert services.claim(document.pk)
    settings.RAG_CLAIM_TIMEOUT = 1
    Document.objects.filter(pk=document.pk).update(claimed_at=document.created.replace(year=2000))
    assert sweeps.requeue_unfinished() == 1
    assert sweeps.requeue_unfinished() == 0  # re-queued once per timeout, not on every sweep
    services.process_document(document.pk)
    document.refresh_from_db()
    assert document.status == "indexed" and document.chunks.count() == 2


@pytest.mark.slow  # the real embedder
def test_a_cancelled_document_stops_and_can_be_ingested_again(monkeypatch):
    document, _ = upload(V1)

    def cancel_midway(document_id, embedded):
        services.cancel(Document.objects.get(pk=document_id))
        original(document_id, embedded)

    original = services.record_progress
    monkeypatch.setattr(services, "record_progress", cancel_midway)
    services.process_document(document.pk)
    document.refresh_from_db()
    assert document.status == "cancelled" and document.error == "Cancelled by a user."
    assert not search("Gold card", k=1)
    monkeypatch.setattr(services, "record_progress", original)
    again, _ = upload(V1)  # uploading it again is a retry
    assert again.pk == document.pk and again.status == "pending"
    services.process_document(document.pk)
    document.refresh_from_db()
    assert document.status == "indexed"
    assert search("Gold card", k=1)[0].document_id == document.pk


@pytest.mark.slow  # the real embedder
def test_a_transient_error_releases_the_document_for_a_retry(monkeypatch):
    document, _ = upload(V1)

    def flaky(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "replace_chunks", flaky)
    with pytest.raises(services.TransientError):
        services.process_document(document.pk)
    document.refresh_from_db()
    assert document.status == "pending" and document.error == ""
    monkeypatch.undo()
    services.process_document(document.pk)
    document.refresh_from_db()
    assert document.status == "indexed"


def test_the_task_gives_up_after_its_retries(monkeypatch, settings, eager_tasks):
    from ingestion.tasks import process_document

    settings.RAG_TASK_MAX_RETRIES = 2
    document, _ = upload(V1)
    monkeypatch.setattr(services, "replace_chunks", lambda *a, **k: (_ for _ in ()).throw(OperationalError("db down")))
    process_document.apply(args=[document.pk])  # eager: each retry runs at once
    document.refresh_from_db()
    assert document.status == "failed" and "on every one of 2 retries" in document.error
    assert "OperationalError" not in document.error  # exception classes stay in the log


def test_a_failed_document_is_retried_on_upload(handbook_pdf, tmp_path):
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"")
    document = ingest_path(broken)
    assert document.status == "failed"
    again, created = upload(b"", name="broken.txt")
    assert not created and again.pk == document.pk and again.status == "pending"


def test_a_workers_sweep_leaves_its_own_documents_alone(settings):
    document, _ = upload(V1)
    assert services.claim(document.pk)
    settings.RAG_CLAIM_TIMEOUT = 1
    Document.objects.filter(pk=document.pk).update(claimed_at=document.created.replace(year=2000))
    services._working_on.add(document.pk)  # as while this process embeds it
    try:
        assert sweeps.requeue_unfinished() == 0
    finally:
        services._working_on.discard(document.pk)
    assert sweeps.requeue_unfinished() == 1


def test_a_stored_file_shared_by_two_collections_goes_with_the_last_document(django_capture_on_commit_callbacks):
    from ingestion.models import Collection

    first = upload(V1)[0]
    other = Collection.objects.create(name="other")
    second = services.add_document(BytesIO(V1), "fees.md", collection=other)[0]
    path = Path(first.file.path)
    assert second.file.name == first.file.name and path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        first.delete()
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        second.delete()
    assert not path.exists()


def test_an_upload_racing_the_delete_of_a_document_that_shared_its_file_keeps_the_file(
    django_capture_on_commit_callbacks,
):
    """A delete committed while an upload of the same bytes to another
    collection was not: the deleter saw no other row and removed the file.
    The upload's own commit puts it back (before, the new document was left
    without its file)."""
    from ingestion.models import Collection

    first = upload(V1)[0]
    path = Path(first.file.path)
    with django_capture_on_commit_callbacks() as upload_commit:
        second = services.add_document(BytesIO(V1), "fees.md", collection=Collection.objects.create(name="other"))[0]
    path.unlink()  # what the racing deleter did, not seeing the upload's uncommitted row
    for callback in upload_commit:
        callback()
    assert path.exists() and path.read_bytes() == V1 and Path(second.file.path) == path


def test_an_unexpected_error_fails_the_document_without_showing_its_class(monkeypatch):
    document, _ = upload(V1)
    monkeypatch.setattr(services, "replace_chunks", lambda *a, **k: (_ for _ in ()).throw(KeyError("/srv/secret/path")))
    services.process_document(document.pk)
    document.refresh_from_db()
    assert document.status == "failed" and document.error == services.INTERNAL_ERROR


def test_a_document_whose_worker_keeps_stopping_fails_instead_of_being_requeued_for_ever(settings):
    """A task killed at the hard time limit leaves its claim behind; the
    recovery sweep queued it again after each timeout, without end."""
    settings.RAG_TASK_MAX_RETRIES = 2
    document, _ = upload(V1)
    long_ago = document.created.replace(year=2000)
    for _ in range(settings.RAG_TASK_MAX_RETRIES + 1):
        assert services.claim(document.pk)  # a worker takes it ...
        Document.objects.filter(pk=document.pk).update(claimed_at=long_ago)  # ... and is killed
        sweeps.requeue_unfinished()
    document.refresh_from_db()
    assert document.status == "failed" and "stopped 3 times" in document.error and document.attempts == 3
    services.reindex(document)
    document.refresh_from_db()
    assert document.status == "pending" and document.attempts == 0
