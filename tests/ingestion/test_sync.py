"""Sources that stay in sync (issue #31): a folder's files added, changed,
moved, deleted and unmounted between syncs, with the collection, its
documents' versions and the withdrawn citations checked after each; a file
that fails fails alone; the schedule, the claim and the admin."""

import os
import shutil
from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion import services, sync
from ingestion.models import Document, Source, SourceFile
from ingestion.sources import location_problem
from tests.ingestion.test_ocr_documents import cite

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def parse_only(monkeypatch):
    """Documents stop once their passages are stored (no embedder), and are not queued to a broker."""
    monkeypatch.setattr(services.document_chunked, "send", lambda **kwargs: [])
    monkeypatch.setattr(services, "enqueue", lambda document_id: None)


@pytest.fixture
def share(settings, tmp_path):
    root = tmp_path / "shares"
    settings.RAG_SYNC_ROOTS = [root]
    folder = root / "policies"
    (folder / "travel").mkdir(parents=True)
    (folder / "travel" / "hotels.md").write_text("# Hotels\n\nA hotel night is refunded up to 140 euros.\n")
    (folder / "travel" / "trains.txt").write_text("Trains are booked in second class.\n")
    (folder / "leave.md").write_text("# Leave\n\nEvery employee has 25 days of paid leave a year.\n")
    (folder / "prices.csv").write_text("a,b\n")  # not a document type
    (folder / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: not even counted
    (folder / "~$leave.docx").write_bytes(b"lock")  # Office's lock file: hidden
    return folder


@pytest.fixture
def source(share):
    return Source.objects.create(name="Policies", collection=services.get_collection(), location=str(share))


def run(source, **options):
    result = sync.sync(source.pk, **options)
    for document in Document.objects.filter(status=Document.Status.PENDING):  # what a worker would do
        services.process_document(document.pk)
    source.refresh_from_db()
    return result


def texts():
    return {d.original_filename: " ".join(c.text for c in d.chunks.all()) for d in Document.objects.all()}


def counts(result, **expected):
    found = {key: value for key, value in result["counts"].items() if value}
    assert found == expected, result


def test_a_folder_is_kept_equal_through_changes_moves_deletes_and_an_unmount(source, share, alice):
    # The first sync adds every document file (not the spreadsheet, not the hidden ones).
    counts(run(source), added=3, skipped=1)
    assert source.state == Source.State.OK and source.last_duration is not None
    assert set(texts()) == {"hotels.md", "trains.txt", "leave.md"}
    assert all(d.source_id == source.pk and d.status == Document.Status.EMBEDDING for d in Document.objects.all())
    assert [e["path"] for e in source.last_errors] == ["prices.csv"]
    hotels = Document.objects.get(original_filename="hotels.md")
    hotels_sha = hotels.sha256

    # Nothing changed: nothing is read again.
    counts(run(source), unchanged=3, skipped=1)

    # A changed file is a new version of its document; a touched but identical one stays.
    (share / "travel" / "hotels.md").write_text("# Hotels\n\nA hotel night is refunded up to 160 euros.\n")
    os.utime(share / "leave.md")
    counts(run(source), changed=1, unchanged=2, skipped=1)
    hotels.refresh_from_db()
    assert hotels.sha256 != hotels_sha and "160 euros" in texts()["hotels.md"]
    assert Document.objects.count() == 3

    # A move to another folder under a new name keeps the document (and its citations).
    leave = Document.objects.get(original_filename="leave.md")
    citation = cite(leave, alice, "25 days of paid leave")
    (share / "hr").mkdir()
    shutil.move(share / "leave.md", share / "hr" / "paid-leave.md")
    counts(run(source), renamed=1, unchanged=2, skipped=1)
    leave.refresh_from_db()
    assert leave.original_filename == "paid-leave.md"
    assert SourceFile.objects.get(document=leave).path == "hr/paid-leave.md"
    citation.refresh_from_db()
    assert not citation.withdrawn

    # A deleted file is withdrawn: its document goes, its citations are marked withdrawn.
    (share / "hr" / "paid-leave.md").unlink()
    counts(run(source), withdrawn=1, unchanged=2, skipped=1)
    assert not Document.objects.filter(pk=leave.pk).exists()
    citation.refresh_from_db()
    assert citation.withdrawn and citation.quote == ""

    # Unmounted: the folder gone, or an empty mount point, pauses; nothing is withdrawn.
    parked = share.with_name("parked")
    share.rename(parked)
    run(source)
    assert source.state == Source.State.PAUSED and "gone" in source.reason
    share.mkdir()
    run(source)
    assert source.state == Source.State.PAUSED and "may be unmounted" in source.reason
    assert Document.objects.count() == 2
    share.rmdir()
    parked.rename(share)
    counts(run(source), unchanged=2, skipped=1)
    assert source.state == Source.State.OK and source.reason == ""

    # Emptied on purpose: the staff's "withdrawing what is gone" sync removes them.
    for path in share.rglob("*"):
        if path.is_file():
            path.unlink()
    run(source)
    assert source.state == Source.State.PAUSED
    counts(run(source, allow_empty=True), withdrawn=2)
    assert not Document.objects.exists() and not SourceFile.objects.exists()


def test_a_failing_file_fails_alone(source, share, settings):
    (share / "big.txt").write_text("x" * (2 * 1024 * 1024))
    (share / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a real PDF")
    settings.RAG_MAX_UPLOAD_MB = 1
    result = run(source)
    counts(result, added=4, failed=1, skipped=1)  # broken.pdf is added, and fails as a document
    errors = {e["path"]: e["error"] for e in result["errors"]}
    assert "1 MB limit" in errors["big.txt"]
    assert Document.objects.get(original_filename="broken.pdf").status == Document.Status.FAILED
    assert Document.objects.get(original_filename="hotels.md").status == Document.Status.EMBEDDING
    assert "1 MB limit" in SourceFile.objects.get(path="big.txt").error
    # Next time it fits: it is taken, the rest left alone.
    settings.RAG_MAX_UPLOAD_MB = 50
    counts(run(source), added=1, unchanged=4, skipped=1)
    assert SourceFile.objects.get(path="big.txt").error == ""


def test_an_uploaded_document_beside_the_source_stays(source, share):
    with open(share / "leave.md", "rb") as handle:  # the same bytes uploaded by hand first
        uploaded, _ = services.add_document(handle, "leave.md", collection=source.collection)
    counts(run(source), added=3, skipped=1)
    assert SourceFile.objects.get(path="leave.md").document_id == uploaded.pk
    (share / "leave.md").unlink()
    counts(run(source), unchanged=2, skipped=1)  # not withdrawn: the source did not add it
    assert Document.objects.filter(pk=uploaded.pk).exists()


def test_files_outside_the_allowed_roots_are_not_read(source, share, tmp_path, settings):
    secret = tmp_path / "secret.txt"
    secret.write_text("the root password")
    (share / "link.txt").symlink_to(secret)
    counts(run(source), added=3, skipped=1)
    assert "link.txt" not in texts()
    assert "RAG_SYNC_ROOTS" in location_problem(str(tmp_path), settings.RAG_SYNC_ROOTS)
    assert location_problem("relative/path", settings.RAG_SYNC_ROOTS)
    assert location_problem(str(share / "nope"), settings.RAG_SYNC_ROOTS) == (
        "No such folder on the server (or it is not a folder)."
    )
    assert location_problem(str(share), settings.RAG_SYNC_ROOTS) == ""


def test_one_sync_at_a_time_and_the_schedule(source):
    Source.objects.filter(pk=source.pk).update(syncing_since=timezone.now())
    with pytest.raises(sync.SyncBusy):
        sync.sync(source.pk)
    assert sync.due_sources() == []  # a running one is not due
    Source.objects.filter(pk=source.pk).update(syncing_since=timezone.now() - timedelta(hours=2))  # a dead worker's
    assert sync.due_sources() == [source.pk]
    run(source)
    assert sync.due_sources() == []
    later = timezone.now() + timedelta(minutes=16)
    assert sync.due_sources(later) == [source.pk]  # RAG_SYNC_INTERVAL_MINUTES (15)
    Source.objects.filter(pk=source.pk).update(interval_minutes=60)
    assert sync.due_sources(later) == []
    Source.objects.filter(pk=source.pk).update(enabled=False, last_sync_at=None)
    assert sync.due_sources() == []


def test_beat_queues_the_due_sources(source, eager_tasks, settings):
    from ingestion.tasks import sync_due_sources

    assert settings.CELERY_BEAT_SCHEDULE["sync-due-sources"]["task"] == "ingestion.tasks.sync_due_sources"
    sync_due_sources.delay()
    source.refresh_from_db()
    assert source.state == Source.State.OK and source.last_counts["added"] == 3


def test_the_admin_registers_shows_and_syncs_a_source(client, admin_user, share, eager_tasks, tmp_path):
    client.force_login(admin_user)
    add = "/admin/ingestion/source/add/"
    form = {"name": "Policies", "collection": services.get_collection().pk, "kind": "folder", "enabled": "on"}
    refused = client.post(add, {**form, "location": str(tmp_path)}).content.decode()
    assert "RAG_SYNC_ROOTS" in refused and not Source.objects.exists()
    response = client.post(add, {**form, "location": str(share)})
    assert response.status_code == 302
    source = Source.objects.get()
    assert source.last_counts["added"] == 3  # the first sync ran at once (eagerly here)
    listing = client.get("/admin/ingestion/source/").content.decode()
    assert "3 added" in listing and "1 not a document type" in listing
    (share / "new.md").write_text("# New\n\nA new policy.\n")
    page = client.get(f"/admin/ingestion/source/{source.pk}/change/").content.decode()
    assert "Sync now" in page and "prices.csv" in page and "3 document(s)" in page
    assert client.post(f"/admin/ingestion/source/{source.pk}/sync/").status_code == 302
    source.refresh_from_db()
    assert source.last_counts["added"] == 1 and source.last_counts["unchanged"] == 3
