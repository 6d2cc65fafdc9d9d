"""A synced folder through a real Celery worker with beat inside it (issue
#31): beat's tick finds the new source due, the worker syncs it, and the
documents it added are parsed, embedded and found by search; a file removed
and a "Sync now" from the admin withdraw its document."""

import pytest

from ingestion import services
from ingestion.models import Document, Source
from tests.conftest import api_client_for
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_beat_syncs_a_folder_that_the_worker_indexes(start_worker, admin_user, client, settings, tmp_path):
    roots = tmp_path / "shares"
    folder = roots / "policies"
    folder.mkdir(parents=True)
    (folder / "hotels.md").write_text("# Hotels\n\nA hotel night is refunded up to 140 euros in Paris.\n")
    (folder / "trains.txt").write_text("Trains are booked in second class for journeys under four hours.\n")
    settings.RAG_SYNC_ROOTS = [roots]
    source = Source.objects.create(name="Policies", collection=services.get_collection(), location=str(folder))
    worker = start_worker(beat=True, RAG_SYNC_ROOTS=str(roots), RAG_SYNC_TICK_SECONDS="5")

    def indexed():
        documents = Document.objects.filter(source=source)
        return documents.count() == 2 and all(d.status == "indexed" for d in documents)

    wait_until(indexed, 180, "beat to sync the folder and the worker to index it", worker)
    source.refresh_from_db()
    assert source.state == Source.State.OK and source.last_counts["added"] == 2
    hits = api_client_for(admin_user).get("/api/search", {"q": "hotel night refund in Paris"}).json()["results"]
    assert hits[0]["filename"] == "hotels.md"

    (folder / "trains.txt").unlink()
    client.force_login(admin_user)
    assert client.post(f"/admin/ingestion/source/{source.pk}/sync/").status_code == 302  # "Sync now"
    wait_until(
        lambda: not Document.objects.filter(original_filename="trains.txt").exists(),
        60,
        "the sync to withdraw the removed file",
        worker,
    )
    source.refresh_from_db()
    assert source.last_counts["withdrawn"] == 1 and source.last_counts["unchanged"] == 1
    assert "ingestion.tasks.sync_due_sources" in worker.log_path.read_text()
