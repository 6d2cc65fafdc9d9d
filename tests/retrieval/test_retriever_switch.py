"""Switching the serving retriever to another embedder version and back:
the new index is built in its own folder while the old one serves, writes
made meanwhile reach both, the switch is one atomic step, and a failed build
leaves the old retriever serving."""

import shutil

import pytest
from django.conf import settings as django_settings

from ingestion.models import Chunk
from retrieval import indexing, stores, versions
from retrieval.embedding import get_embedder, serving_model_path
from retrieval.search import search
from tests.conftest import ingest_path


@pytest.fixture
def other_model(tmp_path):
    """Another embedder folder (a copy of the packaged one: the mechanics are what is tested)."""
    return shutil.copytree(django_settings.RAG_EMBEDDER_PATH, tmp_path / "retrievers" / "v1")


def write_note(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def chunk_ids(document) -> set[int]:
    return set(Chunk.objects.filter(document=document).values_list("pk", flat=True))


def test_switching_builds_the_new_index_apart_then_serves_from_it(handbook, other_model, tmp_path):
    old_store = stores.get_store()
    assert stores.active_retriever()["name"] == "base"
    seen = []
    count = versions.switch_retriever("v1", str(other_model), progress=lambda done, total: seen.append((done, total)))
    assert count == len(chunk_ids(handbook))
    assert seen[-1] == (count, count)
    assert stores.active_retriever() == {"name": "v1", "model": str(other_model), "form": "contextual"}
    assert serving_model_path() == str(other_model)
    assert get_embedder().model_path == str(other_model)
    new_store = stores.get_store()
    assert new_store.folder != old_store.folder and new_store.folder.name == "v1-contextual"
    assert set(new_store.current().ids().tolist()) == chunk_ids(handbook)
    assert set(new_store.current_bm25().ids().tolist()) == chunk_ids(handbook)
    hits = search("annual fee of the Gold card")
    assert hits and "95 euros" in hits[0].text
    assert indexing.check_index()["missing_vectors"] == []


def test_documents_indexed_during_a_build_reach_both_indexes(handbook, other_model, tmp_path):
    registry = stores.registry()
    with registry.changing() as state:  # as switch_retriever does before it embeds the corpus
        state["staging"] = {"name": "v1", "model": str(other_model)}
    note = ingest_path(write_note(tmp_path, "late.md", "# Late\n\nThe Titanium card arrives in May."))
    assert chunk_ids(note) <= set(stores.get_store().current().ids().tolist())  # still serving: base
    staged = stores.store_for("v1", str(other_model))
    assert chunk_ids(note) <= set(staged.current().ids().tolist())
    assert not chunk_ids(handbook) & set(staged.current().ids().tolist())  # the build has not run yet

    indexing.remove_chunks(sorted(chunk_ids(note)))  # deletions reach both as well
    assert not chunk_ids(note) & set(staged.current().ids().tolist())
    assert not chunk_ids(note) & set(stores.get_store().current().ids().tolist())


def test_a_failed_build_leaves_the_old_retriever_serving(handbook, other_model):
    def fail(done, total):
        if done:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        versions.switch_retriever("v1", str(other_model), progress=fail)
    assert stores.active_retriever()["name"] == "base"
    assert stores.registry().state()["staging"] is None
    assert search("annual fee of the Gold card")


def test_rolling_back_catches_up_with_what_changed_meanwhile(handbook, other_model, tmp_path):
    versions.switch_retriever("v1", str(other_model))
    note = ingest_path(write_note(tmp_path, "later.md", "# Later\n\nThe Copper card has a 12 euro fee."))
    indexing.remove_chunks(sorted(chunk_ids(handbook))[:1])
    Chunk.objects.filter(pk=sorted(chunk_ids(handbook))[0]).delete()

    count = versions.switch_retriever("base", django_settings.RAG_EMBEDDER_PATH)
    assert stores.active_retriever()["name"] == "base"
    assert stores.registry().state()["active"]["model"] is None  # the packaged default, whatever its path
    expected = chunk_ids(handbook) | chunk_ids(note)
    assert set(stores.get_store().current().ids().tolist()) == expected and count == len(expected)
    report = indexing.check_index()
    assert not any(report[key] for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"))


def test_switching_rejects_bad_names_and_missing_models(db, tmp_path):
    with pytest.raises(ValueError, match="Bad retriever version name"):
        versions.switch_retriever("../etc", str(tmp_path))
    with pytest.raises(FileNotFoundError):
        versions.switch_retriever("v9", str(tmp_path / "nowhere"))
    assert stores.active_retriever()["name"] == "base"


def test_a_new_version_never_inherits_the_index_of_a_deleted_one_with_its_name(db, settings):
    from retrieval import versions

    first = versions.new_version(settings.RAG_EMBEDDER_PATH)
    leftover = settings.RAG_INDEX_DIR / first.name
    leftover.mkdir(parents=True)
    (leftover / "manifest.json").write_text("{}")  # vectors of the deleted version's model
    first.delete()
    again = versions.new_version(settings.RAG_EMBEDDER_PATH)
    assert again.name == first.name and not leftover.exists()


def stalled_switch(version, other_model, seconds_ago):
    """What a worker killed in the middle of switching to `version` leaves:
    the row switching (its progress last written `seconds_ago`) and the
    version's index staged in the registry."""
    from datetime import timedelta

    from django.utils import timezone

    from retrieval.models import RetrieverVersion

    RetrieverVersion.objects.filter(pk=version.pk).update(
        status="switching",
        stage="switching",
        switch_from="evaluated",
        progress_done=3,
        progress_total=9,
        updated=timezone.now() - timedelta(seconds=seconds_ago),
    )
    with stores.registry().changing() as state:
        state["staging"] = {"name": version.name, "model": str(other_model)}
    version.refresh_from_db()
    return version


@pytest.fixture
def v1(handbook, other_model):
    from retrieval import versions
    from retrieval.models import RetrieverVersion

    versions.base_version()
    return RetrieverVersion.objects.create(number=1, name="v1", path=str(other_model), status="evaluated")


def test_a_switch_whose_worker_died_is_resumed_by_switching_again(v1, other_model, handbook, settings):
    from retrieval import versions

    stalled_switch(v1, other_model, seconds_ago=settings.RAG_CLAIM_TIMEOUT + 5)
    assert versions.is_stalled(v1)
    versions.switch_to(v1.pk)
    v1.refresh_from_db()
    assert (v1.status, v1.is_active, v1.error) == ("active", True, "")
    assert stores.active_retriever()["name"] == "v1" and stores.registry().state()["staging"] is None
    assert set(stores.get_store().current().ids().tolist()) == chunk_ids(handbook)


def test_a_running_switch_is_not_taken_over(v1, other_model):
    from retrieval import versions

    stalled_switch(v1, other_model, seconds_ago=5)  # still reporting progress
    with pytest.raises(versions.SwitchError, match="being switched in now"):
        versions.switch_to(v1.pk)
    assert versions.abandon_stalled_switches() == 0
    assert stores.registry().state()["staging"]["name"] == "v1"


def test_a_stalled_switch_does_not_block_switching_to_another_version(v1, other_model, settings, tmp_path):
    from retrieval import versions
    from retrieval.models import RetrieverVersion

    stalled_switch(v1, other_model, seconds_ago=settings.RAG_CLAIM_TIMEOUT + 5)
    v2_model = shutil.copytree(other_model, tmp_path / "retrievers" / "v2")
    v2 = RetrieverVersion.objects.create(number=2, name="v2", path=str(v2_model), status="evaluated")
    versions.switch_to(v2.pk)
    v1.refresh_from_db()
    assert v1.status == "evaluated" and "interrupted" in v1.error  # back as it was, with the reason
    assert stores.active_retriever()["name"] == "v2" and stores.registry().state()["staging"] is None
    note = ingest_path(write_note(tmp_path, "after.md", "# After\n\nWritten after the stalled switch was abandoned."))
    assert not chunk_ids(note) & set(stores.store_for("v1", str(other_model)).current().ids().tolist())


def test_a_running_fine_tuning_runs_progress_keeps_another_worker_from_claiming_it(db):
    """The run's progress is its heartbeat: it stamps `updated`, so a run
    that is writing progress is never taken for a stopped one (its progress
    writes left `updated` as it was, and after RAG_CLAIM_TIMEOUT a second
    worker could claim the live run)."""
    from datetime import timedelta

    from django.utils import timezone

    from retrieval.finetune import pipeline
    from retrieval.models import RetrieverVersion

    version = versions.new_version(django_settings.RAG_EMBEDDER_PATH)
    assert pipeline.claim(version.pk) and not pipeline.claim(version.pk)
    long_ago = timezone.now() - timedelta(seconds=django_settings.RAG_CLAIM_TIMEOUT + 60)
    RetrieverVersion.objects.filter(pk=version.pk).update(updated=long_ago)
    pipeline.Recorder(version.pk, None)("train", 1, 10)
    assert not pipeline.claim(version.pk)
    RetrieverVersion.objects.filter(pk=version.pk).update(updated=long_ago)  # no progress since: a stopped worker
    assert pipeline.claim(version.pk)
