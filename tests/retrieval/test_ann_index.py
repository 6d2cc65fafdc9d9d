"""Approximate search (HNSW) against exact search, tombstones, compaction,
and the background rebuild that turns a growing exact index into HNSW."""

import numpy as np
import pytest
from django.conf import settings as django_settings

from retrieval import indexing, stores
from retrieval.faiss_index import FLAT, HNSW, IndexParams, VectorIndex
from tests.vectors import embedding_like, uniform

DIM = 384


def default_hnsw() -> IndexParams:
    s = django_settings
    return IndexParams(HNSW, s.RAG_HNSW_M, s.RAG_HNSW_EF_CONSTRUCTION, s.RAG_HNSW_EF_SEARCH)


def recall_at_10(exact: VectorIndex, approximate: VectorIndex, queries) -> float:
    _, want = exact.search(queries, 10)
    _, got = approximate.search(queries, 10)
    return float(np.mean([len(set(w) & set(g)) / 10 for w, g in zip(want, got)]))


@pytest.fixture(scope="module")
def corpus():
    vectors, centers = embedding_like(20_000, DIM, seed=0)
    queries, _ = embedding_like(200, DIM, seed=1, centers=centers)
    exact = VectorIndex(DIM, use_gpu=False)
    exact.add(np.arange(20_000), vectors)
    graph = VectorIndex(DIM, use_gpu=False, params=default_hnsw())
    graph.add(np.arange(20_000), vectors)
    return vectors, queries, exact, graph


@pytest.mark.slow  # builds and copies the 20,000-vector HNSW graph: 5-9 s each on 2 cores
def test_hnsw_at_the_default_settings_finds_at_least_95_percent_of_the_exact_top_10(corpus):
    _vectors, queries, exact, graph = corpus
    assert graph.kind == HNSW and graph.ntotal == 20_000
    assert recall_at_10(exact, graph, queries) >= 0.95


def test_hnsw_recall_on_structureless_uniform_vectors_is_lower_and_efsearch_raises_it():
    # The worst case, recorded so the docs' caveat stays true: no neighbourhoods, lower recall.
    vectors, queries = uniform(5_000, 64, seed=2), uniform(100, 64, seed=3)
    exact = VectorIndex(64, use_gpu=False)
    exact.add(np.arange(5_000), vectors)
    low = VectorIndex(64, use_gpu=False, params=IndexParams(HNSW, 16, 40, 16))
    low.add(np.arange(5_000), vectors)
    high = VectorIndex(64, use_gpu=False, params=IndexParams(HNSW, 16, 40, 256))
    high.add(np.arange(5_000), vectors)
    assert recall_at_10(exact, low, queries) < recall_at_10(exact, high, queries)


@pytest.mark.slow  # builds and copies the 20,000-vector HNSW graph: 5-9 s each on 2 cores
def test_deleting_from_hnsw_leaves_tombstones_that_no_search_or_lookup_returns(corpus):
    vectors, queries, _exact, graph = corpus
    index = graph.rebuilt(graph.params)  # a private copy
    _, top = index.search(queries[:5], 10)
    doomed = np.unique(top[:, :5])
    assert index.remove(doomed) == len(doomed)
    assert index.tombstones == len(doomed) and index.slots == 20_000
    assert index.ntotal == 20_000 - len(doomed)
    scores, ids = index.search(queries[:5], 10)
    assert ids.shape == (5, 10) and (ids >= 0).all()  # over-fetched past the tombstones
    assert not set(ids.ravel()) & set(doomed.tolist())
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert not set(index.ids().tolist()) & set(doomed.tolist())
    assert index.vectors(doomed[:3].tolist()) == {}
    assert index.remove(doomed) == 0  # already gone

    # Re-adding a deleted id gives it its new vector only.
    index.add([int(doomed[0])], vectors[:1])
    _, ids = index.search(vectors[:1], 2)
    assert int(doomed[0]) in ids[0].tolist()
    assert index.ntotal == 20_000 - len(doomed) + 1

    compacted = index.compact()
    assert compacted.tombstones == 0 and compacted.slots == compacted.ntotal == index.ntotal
    assert sorted(compacted.ids().tolist()) == sorted(index.ids().tolist())


@pytest.mark.slow  # builds and copies the 20,000-vector HNSW graph: 5-9 s each on 2 cores
def test_tombstones_survive_save_and_load(corpus, tmp_path):
    _vectors, queries, _exact, graph = corpus
    index = graph.rebuilt(graph.params)
    index.remove(list(range(100)))
    index.save(tmp_path / "graph.faiss")
    loaded = VectorIndex.load(tmp_path / "graph.faiss", use_gpu=False)
    assert (loaded.kind, loaded.tombstones, loaded.ntotal) == (HNSW, 100, 19_900)
    assert not set(loaded.ids().tolist()) & set(range(100))
    for got, want in zip(loaded.search(queries[:20], 10), index.search(queries[:20], 10)):
        np.testing.assert_array_equal(got, want)


# -- choosing and rebuilding the index type ------------------------------------------


def test_the_index_type_follows_the_corpus_size(settings):
    settings.RAG_INDEX_EXACT_MAX = 1000
    assert stores.index_params(1000).kind == FLAT
    assert stores.index_params(1001).kind == HNSW
    flat = VectorIndex(8, use_gpu=False)
    flat.add(np.arange(1001), uniform(1001, 8))
    assert indexing.maintenance_due(flat).kind == HNSW
    small = VectorIndex(8, use_gpu=False, params=stores.index_params(5000))
    small.add(np.arange(10), uniform(10, 8))
    assert indexing.maintenance_due(small).kind == FLAT  # shrank far below the limit


@pytest.mark.slow  # the real embedder
def test_a_growing_index_is_rebuilt_as_hnsw_in_the_background_without_losing_concurrent_writes(db, settings):
    settings.RAG_INDEX_EXACT_MAX = 1500
    store = stores.get_store()
    vectors, _ = embedding_like(3000, DIM, seed=4)
    with store.write() as snapshot:
        snapshot.vectors.add(np.arange(1, 2001), vectors[:2000])
    version, copy = store.snapshot_copy()
    assert copy.kind == FLAT and indexing.maintenance_due(copy).kind == HNSW

    # A write lands while the graph is being built from the older snapshot.
    real_rebuilt = VectorIndex.rebuilt

    def rebuilt_while_writing(self, params):
        built = real_rebuilt(self, params)
        with store.write() as snapshot:
            snapshot.vectors.add(np.arange(2001, 3001), vectors[2000:])
            snapshot.vectors.remove([1, 2, 3])
        return built

    VectorIndex.rebuilt = rebuilt_while_writing
    try:
        outcome = indexing.maintain_index()
    finally:
        VectorIndex.rebuilt = real_rebuilt
    assert "rebuilt as hnsw" in outcome
    index = store.current()
    assert index.kind == HNSW and store.manifest()["version"] == version + 2
    assert sorted(index.ids().tolist()) == list(range(4, 3001))
    _, ids = index.search(vectors[2500], 1)
    assert ids[0, 0] == 2501
    assert indexing.maintain_index() == "nothing to do"
    assert not (store.folder / ".rebuilding").exists()


def test_the_recall_check_tells_a_good_index_from_a_broken_one():
    """check_index's recall against exact search (a GPU_CAGRA index on Milvus
    is opted into only with it) on a sample of the index's own vectors."""
    vectors, _ = embedding_like(3_000, DIM, seed=3)
    index = VectorIndex(DIM, use_gpu=False, params=default_hnsw())
    index.add(np.arange(1, 3_001), vectors)
    assert indexing.recall_against_exact(index, sample=50) >= 0.95

    class Shuffled(VectorIndex):  # an index that returns the right number of wrong neighbours
        def search(self, queries, k):
            scores, ids = super().search(queries, k)
            return scores, (ids % 3_000) + 1 if k else ids

    broken = Shuffled(DIM, use_gpu=False)
    broken.add(np.arange(1, 3_001), vectors)
    assert indexing.recall_against_exact(broken, sample=50) < 0.2
    assert indexing.recall_against_exact(VectorIndex(DIM, use_gpu=False)) is None
