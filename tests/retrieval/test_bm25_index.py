"""retrieval/bm25_index.py, and the BM25 half of retrieval/snapshots.py. No database, no model."""

import json

import numpy as np
import pytest

from retrieval.bm25_index import TOKENIZER, BM25Index, s_stem, tokenize
from retrieval.snapshots import IndexStore

PASSAGES = {
    10: "The Gold card has an annual fee of 95 euros.",
    11: "The Platinum card includes travel insurance and airport lounge access.",
    12: "Replace the hinge with part ZX-4471 when the door sags.",
    13: "Policies for lost cards: call the bank at once.",
}


@pytest.fixture
def index():
    index = BM25Index()
    index.add(list(PASSAGES), list(PASSAGES.values()))
    return index


def test_it_tokenises_with_bm25s_english_stopwords_and_plural_folding():
    assert tokenize(["The policies of the Cards: part ZX-4471 is used"]) == [
        ["policy", "card", "part", "zx", "4471", "used"]
    ]
    assert tokenize(["", "the of and"]) == [[], []]
    assert [s_stem(w) for w in ["cards", "policies", "boxes", "glass", "status", "bus", "4471s", "is"]] == [
        "card",
        "policy",
        "boxe",
        "glass",
        "status",
        "bus",
        "4471s",
        "is",
    ]


def test_it_finds_an_exact_rare_token_first(index):
    scores, ids = index.search("ZX-4471", k=3)
    assert ids.tolist() == [12] and scores[0] > 0


def test_it_returns_only_chunks_that_share_a_term_best_first(index):
    scores, ids = index.search("card fee", k=10)
    assert ids[0] == 10 and set(ids.tolist()) == {10, 11, 13}
    assert list(scores) == sorted(scores, reverse=True)
    assert index.search("card", k=2)[1].size == 2
    assert index.search("unicorn", k=5)[1].size == 0
    assert index.search("the of", k=5)[1].size == 0  # stopwords only


@pytest.mark.parametrize("seed", range(6))
def test_its_pruned_top_k_is_exactly_the_top_k_of_scoring_every_row(seed):
    # Postings.top skips most of the common words' posting lists: its results
    # must still equal bm25s's score for every row, sorted by (score, row).
    from retrieval.postings import Postings

    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)]
    p = 1.0 / np.arange(1, 301) ** 1.1
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 30)), p=p / p.sum())) for _ in range(2000)]
    texts[5] = texts[6] = "w250 w251"  # exact ties
    corpus = BM25Index()
    corpus.add(range(1, 2001), texts)
    engine = corpus._built()
    postings = Postings(engine)
    queries = [
        ["w0", "w1", "w250"],
        ["w250", "w251"],
        ["w3", "w3", "w120"],
        ["w0"],
        list(words[:12]),
        [str(w) for w in rng.choice(words, size=5)],
    ]
    for query in queries:
        term_ids = engine.get_tokens_ids(query)
        every = np.asarray(engine.get_scores_from_ids(term_ids), dtype=np.float32)
        for k in (1, 2, 10, 60, 5000):
            rows, scores = postings.top(term_ids, k)
            matching = np.flatnonzero(every > 0)
            expected = matching[np.lexsort((matching, -every[matching]))][:k]
            assert rows.tolist() == expected.tolist(), (query, k)
            np.testing.assert_allclose(scores, every[expected], rtol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_its_kth_largest_is_exact_on_large_arrays_with_ties(seed):
    from retrieval.postings import kth_largest

    rng = np.random.default_rng(seed)
    values = rng.random(300_000).astype(np.float32)
    values[rng.random(300_000) < 0.3] = 0.5  # a third tied at one score
    values[:1000] = values.max()  # and a block tied at the top
    for k in (1, 10, 60, 999, 1000, 1001, 5000, 30_000, 300_000):
        assert kth_largest(values, k) == np.sort(values)[-k], k
    # A sample that overestimates: the high values sit exactly where the sample looks.
    skewed = rng.random(300_000).astype(np.float32) * 0.5
    skewed[:: 300_000 // 16_384] = 1.0
    assert kth_largest(skewed, 30_000) == np.sort(skewed)[-30_000]


def test_its_posting_lists_are_put_in_row_order_when_they_are_not():
    from retrieval.postings import Postings

    corpus = BM25Index()
    corpus.add(range(1, 7), ["alpha beta", "beta", "alpha", "beta gamma", "alpha", "gamma"])
    engine = corpus._built()
    indptr, indices = engine.scores["indptr"], engine.scores["indices"]
    before = Postings(engine).top(engine.get_tokens_ids(["alpha", "beta"]), 6)
    for column in range(len(indptr) - 1):  # reverse every posting list
        indices[indptr[column] : indptr[column + 1]] = indices[indptr[column] : indptr[column + 1]][::-1].copy()
        engine.scores["data"][indptr[column] : indptr[column + 1]] = engine.scores["data"][
            indptr[column] : indptr[column + 1]
        ][::-1].copy()
    after = Postings(engine)
    assert not np.array_equal(after.indices, indices) or len(indices) < 2
    got = after.top(engine.get_tokens_ids(["alpha", "beta"]), 6)
    assert got[0].tolist() == before[0].tolist()
    np.testing.assert_allclose(got[1], before[1])


def test_it_removes_and_replaces_by_id(index):
    assert index.remove([12, 999]) == 1
    assert index.search("ZX-4471", k=3)[1].size == 0
    assert index.ntotal == 3 and index.dirty
    index.add([10], ["Part ZX-4471 is now listed here."])  # re-adding replaces
    assert index.ntotal == 3
    assert index.search("ZX-4471", k=3)[1].tolist() == [10]
    assert index.search("annual fee", k=3)[1].size == 0


def test_it_rejects_mismatched_input():
    with pytest.raises(ValueError, match="differ in length"):
        BM25Index().add([1, 2], ["only one"])


def test_it_saves_and_loads_for_reading_and_for_writing(index, tmp_path):
    index.save(tmp_path / "bm25-000001")
    meta = json.loads((tmp_path / "bm25-000001" / "meta.json").read_text())
    assert meta == {"format": 1, "tokenizer": TOKENIZER, "ntotal": 4}
    with np.load(tmp_path / "bm25-000001" / "corpus.npz", allow_pickle=False) as data:
        assert data["ids"].tolist() == [10, 11, 12, 13]  # plain arrays: no pickle needed
    reader = BM25Index.load(tmp_path / "bm25-000001")
    assert reader.ids().tolist() == [10, 11, 12, 13] and not reader.dirty
    for query in ("ZX-4471", "card fee", "lounge"):
        np.testing.assert_array_equal(reader.search(query, 5)[1], index.search(query, 5)[1])
        np.testing.assert_allclose(reader.search(query, 5)[0], index.search(query, 5)[0], rtol=1e-6)
    writer = BM25Index.load(tmp_path / "bm25-000001", for_writing=True)
    assert writer.tokens(12) == ["replace", "hinge", "part", "zx", "4471", "when", "door", "sag"]
    writer.remove([10])
    assert writer.search("annual fee", 5)[1].size == 0
    with pytest.raises(FileExistsError):
        index.save(tmp_path / "bm25-000001")
    assert [p.name for p in tmp_path.iterdir()] == ["bm25-000001"]  # no temporary folder left


def test_it_saves_an_empty_index(tmp_path):
    BM25Index().save(tmp_path / "empty")
    loaded = BM25Index.load(tmp_path / "empty")
    assert loaded.ntotal == 0 and loaded.search("anything", 3)[1].size == 0


def test_it_refuses_a_snapshot_made_by_another_tokenizer(index, tmp_path):
    index.save(tmp_path / "b")
    meta = tmp_path / "b" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "tokenizer": "other/0"}))
    with pytest.raises(ValueError, match="rebuild the index"):
        BM25Index.load(tmp_path / "b")


# -- in the versioned store ---------------------------------------------------------

DIM = 4


def make_store(folder) -> IndexStore:
    return IndexStore(folder, DIM, "test-model", use_gpu=False)


def vectors(n):
    return np.eye(DIM, dtype=np.float32)[:n]


def test_the_store_writes_vectors_and_bm25_as_one_version(tmp_path):
    folder = tmp_path / "index"
    store, reader = make_store(folder), make_store(folder)
    assert reader.current_bm25().ntotal == 0
    with store.write() as snapshot:
        snapshot.vectors.add([10, 11], vectors(2))
        snapshot.bm25.add([10, 11], [PASSAGES[10], PASSAGES[11]])
    manifest = store.manifest()
    assert manifest["version"] == 1 and manifest["bm25"] == "bm25-000001" and manifest["bm25_ntotal"] == 2
    first = reader.current_bm25()
    assert first.ids().tolist() == [10, 11]
    assert reader.current_bm25() is first  # cached while the version is unchanged
    with store.write() as snapshot:
        snapshot.bm25.remove([10])
        snapshot.vectors.remove([10])
    assert reader.current_bm25().ids().tolist() == [11]  # a reader sees the new version


def test_a_vectors_only_writer_carries_bm25_over_without_rewriting_it(tmp_path):
    folder = tmp_path / "index"
    store = make_store(folder)
    with store.write() as snapshot:
        snapshot.vectors.add([12], vectors(1))
        snapshot.bm25.add([12], [PASSAGES[12]])
    for version in (2, 3, 4):
        with store.writer() as index:
            index.add([version], vectors(1))
        assert store.manifest()["bm25"] == "bm25-000001"
    assert sorted(p.name for p in folder.glob("bm25-*")) == ["bm25-000001"]  # still in use, so kept
    assert make_store(folder).current_bm25().search("ZX-4471", 1)[1].tolist() == [12]
    with store.write() as snapshot:
        snapshot.bm25.add([13], [PASSAGES[13]])
    with store.writer() as index:
        pass
    assert store.manifest()["bm25"] == "bm25-000005"
    assert sorted(p.name for p in folder.glob("bm25-*")) == ["bm25-000005"]  # the old one pruned


def test_a_fresh_writer_empties_bm25_too(tmp_path):
    store = make_store(tmp_path / "index")
    with store.write() as snapshot:
        snapshot.bm25.add([12], [PASSAGES[12]])
    with store.writer(fresh=True):
        pass
    assert "bm25" not in store.manifest()
    assert store.current_bm25().ntotal == 0


def test_a_failed_writer_leaves_bm25_as_it_was(tmp_path):
    folder = tmp_path / "index"
    store = make_store(folder)
    with store.write() as snapshot:
        snapshot.bm25.add([12], [PASSAGES[12]])
    with pytest.raises(RuntimeError, match="boom"):
        with store.write() as snapshot:
            snapshot.bm25.remove([12])
            raise RuntimeError("boom")
    assert make_store(folder).current_bm25().ids().tolist() == [12]
    assert sorted(p.name for p in folder.iterdir() if "bm25" in p.name) == ["bm25-000001"]
