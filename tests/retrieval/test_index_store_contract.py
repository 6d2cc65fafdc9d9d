"""One contract, two index stores: every test here runs against the FAISS
folder store (the default) and against Milvus (a milvus-lite server on
loopback, issue #32), through the code search, indexing, versions and access
use: really ingested documents, the real embedder."""

import shutil

import numpy as np
import pytest
from django.conf import settings as django_settings

from ingestion.models import Chunk, Collection
from retrieval import indexing, passages, stores, versions
from retrieval.embedding import get_embedder, serving_model_path
from retrieval.search import search
from tests.conftest import ingest_path

pytestmark = pytest.mark.slow  # the real embedder, in every test

NOTES = {
    "cards.md": "# Card fees\n\nThe Gold card has an annual fee of 95 euros. The Silver card has no annual fee.\n",
    "parts.md": "# Spare parts\n\nQX-4417 shaft seal. ZK-4470 O-ring kit. Facilities fitted hinge ZX-4471 last spring.\n",
    "travel.md": "# Travel rules\n\nThe daily meal allowance abroad is 55 euros. Claims are filed within 30 days.\n",
}


@pytest.fixture(params=["faiss", "milvus"])
def backend(request, settings):
    settings.RAG_PASSAGE_FORM = "text"
    if request.param == "milvus":
        request.getfixturevalue("milvus")
    return request.param


@pytest.fixture
def notes(backend, db, tmp_path):
    documents = {}
    for name, text in NOTES.items():
        path = tmp_path / name
        path.write_text(text)
        documents[name] = ingest_path(path)
    return documents


def ids_of(*documents) -> set[int]:
    return set(Chunk.objects.filter(document__in=documents).values_list("pk", flat=True))


def test_the_store_is_the_one_the_setting_names(notes, backend):
    store = stores.get_store()
    assert type(store).__name__ == {"faiss": "IndexStore", "milvus": "MilvusStore"}[backend]


def test_ingested_passages_are_searched_dense_bm25_and_fused(notes):
    everything = ids_of(*notes.values())
    store = stores.get_store()
    assert set(store.current().ids().tolist()) == everything == set(store.current_bm25().ids().tolist())
    hits = search("annual fee of the Gold card", k=2)
    assert hits[0].filename == "cards.md" and "95 euros" in hits[0].text
    assert -1 <= hits[0].score <= 1 and hits[0].scores["bm25"] > 0
    # An exact part number is found by its term (BM25), wherever dense ranks it.
    assert search("ZX-4471", k=1, methods=["bm25"])[0].filename == "parts.md"
    assert search("ZX-4471", k=1)[0].filename == "parts.md"


def test_stored_vectors_and_term_statistics_read_back(notes):
    chunk = Chunk.objects.filter(document=notes["travel.md"]).first()
    vector = stores.passage_vectors([chunk.pk])
    assert vector.shape == (1, 384) and np.isclose(np.linalg.norm(vector), 1, atol=1e-3)
    counts, total = passages.term_statistics(["euros", "allowance", "zeppelin", "the"])
    assert total == len(ids_of(*notes.values()))
    assert counts == {"euros": 2, "allowance": 1, "zeppelin": 0, "the": 0}


def test_a_user_gets_k_hits_from_the_collections_they_may_read_however_many_others_rank_higher(
    backend, db, alice, bob, tmp_path
):
    Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    for number in range(12):  # better matches, in a collection bob may not read
        path = tmp_path / f"falcon-{number}.md"
        path.write_text(f"# Falcon {number}\n\nThe Gold card annual fee for Falcon plan {number} is {number} euros.\n")
        ingest_path(path, "alice-private", owner=alice)
    public = tmp_path / "public.md"
    public.write_text("# Public\n\nCards: the Gold card has an annual fee.\n\n# Other\n\nBranches open at nine.\n")
    ingest_path(public)
    hits = search("Gold card annual fee", k=3, user=bob)  # both public passages, though 12 rank higher
    assert [hit.filename for hit in hits] == ["public.md", "public.md"]
    hits = search("Gold card annual fee", k=3, user=alice)
    assert len(hits) == 3 and {hit.filename for hit in hits} <= {f"falcon-{n}.md" for n in range(12)} | {"public.md"}
    narrowed = search("Gold card annual fee", k=3, user=alice, collections=["default"])
    assert [hit.filename for hit in narrowed] == ["public.md", "public.md"]


def test_the_recall_check_reads_the_whole_index_and_finds_it_exact_at_this_size(notes):
    report = indexing.check_index(recall=True)
    assert report["recall@10"] == 1.0 and report["recall_ok"]


def test_a_deleted_document_is_gone_and_the_check_finds_nothing_wrong(
    notes, django_capture_on_commit_callbacks, eager_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        notes["parts.md"].delete()
    assert "parts.md" not in {hit.filename for hit in search("ZX-4471 hinge", k=3)}
    report = indexing.check_index()
    assert report["vectors"] == report["chunks"] == len(ids_of(notes["cards.md"], notes["travel.md"]))
    assert not any(report[key] for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"))


def test_the_check_finds_and_repairs_a_missing_and_an_extra_passage(notes):
    lost = sorted(ids_of(notes["cards.md"]))[0]
    indexing.remove_chunks([lost])
    stray = sorted(ids_of(notes["travel.md"]))[0]
    Chunk.objects.filter(pk=stray).delete()  # its passage stays in the index
    report = indexing.check_index()
    assert report["missing_vectors"] == [lost] == report["missing_bm25"]
    assert report["extra_vectors"] == [stray] == report["extra_bm25"]
    assert indexing.check_index(repair=True)["repaired"]
    report = indexing.check_index()
    assert not any(report[key] for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"))
    assert search("annual fee of the Gold card", k=1)[0].filename == "cards.md"


def test_a_rebuild_serves_the_same_passages_and_ranking(notes):
    before = [hit.chunk_id for hit in search("meal allowance abroad", k=3)]
    count = indexing.rebuild_index()
    assert count == len(ids_of(*notes.values()))
    assert [hit.chunk_id for hit in search("meal allowance abroad", k=3)] == before


def test_a_retriever_switch_builds_apart_serves_and_rolls_back(notes, tmp_path):
    other = shutil.copytree(django_settings.RAG_EMBEDDER_PATH, tmp_path / "retrievers" / "v1")
    old_store = stores.get_store()
    count = versions.switch_retriever("v1", str(other))
    assert count == len(ids_of(*notes.values()))
    assert stores.active_retriever()["name"] == "v1" and stores.get_store() is not old_store
    assert serving_model_path() == str(other) == get_embedder().model_path  # queries embedded by v1 too
    late = tmp_path / "late.md"
    late.write_text("# Late\n\nThe Titanium card arrives in May.\n")
    note = ingest_path(late)
    assert search("When does the Titanium card arrive?", k=1)[0].filename == "late.md"
    versions.switch_retriever("base", django_settings.RAG_EMBEDDER_PATH)  # rollback: catches up
    assert stores.active_retriever()["name"] == "base"
    assert ids_of(note) <= set(stores.get_store().current().ids().tolist())
    assert search("When does the Titanium card arrive?", k=1)[0].filename == "late.md"


def test_a_version_name_reused_after_deletion_starts_from_an_empty_index(notes, tmp_path):
    other = shutil.copytree(django_settings.RAG_EMBEDDER_PATH, tmp_path / "retrievers" / "v7")
    versions.switch_retriever("v7", str(other))
    versions.switch_retriever("base", django_settings.RAG_EMBEDDER_PATH)
    stores.drop_index("v7")
    assert stores.store_for("v7", str(other)).current().ntotal == 0
