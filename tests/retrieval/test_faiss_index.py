"""retrieval/faiss_index.py and retrieval/snapshots.py on the CPU with small random vectors."""

import json
import re

import numpy as np
import pytest

from retrieval.faiss_index import IndexInfo, IndexParams, VectorIndex, gpu_available
from retrieval.snapshots import KEEP_SNAPSHOTS, IndexStore

DIM = 16


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def vectors():
    return unit_vectors(10)


@pytest.fixture
def index(vectors):
    index = VectorIndex(DIM, model="test-model", use_gpu=False)
    index.add(np.arange(100, 110), vectors)
    return index


# -- VectorIndex ---------------------------------------------------------------


def test_it_finds_each_vector_first_with_cosine_one(index, vectors):
    scores, ids = index.search(vectors, k=3)
    assert scores.shape == ids.shape == (10, 3)
    assert ids[:, 0].tolist() == list(range(100, 110))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_it_returns_cosine_scores_best_first(index, vectors):
    query = unit_vectors(1, seed=7)[0]
    scores, ids = index.search(query, k=10)  # a 1-D query is one query
    expected = vectors @ query
    order = np.argsort(-expected)
    assert ids[0].tolist() == [100 + i for i in order]
    np.testing.assert_allclose(scores[0], expected[order], atol=1e-5)


def test_it_replaces_the_vector_of_a_re_added_id(index, vectors):
    new = unit_vectors(1, seed=99)
    index.add([103], new)
    assert index.ntotal == 10
    assert sorted(index.ids().tolist()) == list(range(100, 110))
    scores, ids = index.search(new, k=1)
    assert ids[0, 0] == 103 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    scores, ids = index.search(vectors[3], k=10)  # the old vector is gone
    old_score = scores[0][ids[0].tolist().index(103)]
    assert old_score == pytest.approx(float(new[0] @ vectors[3]), abs=1e-5)


def test_it_removes_ids_and_counts_only_those_present(index, vectors):
    assert index.remove([101, 105, 999]) == 2
    assert index.ntotal == 8
    assert 101 not in index.ids() and 105 not in index.ids()
    _, ids = index.search(vectors, k=8)
    assert not set(ids.ravel()) & {101, 105}
    assert index.remove([]) == 0


def test_it_returns_all_vectors_when_k_exceeds_ntotal(index):
    scores, ids = index.search(unit_vectors(2, seed=3), k=50)
    assert ids.shape == scores.shape == (2, 10)
    assert sorted(ids[0].tolist()) == list(range(100, 110))
    assert (ids >= 0).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_it_returns_empty_results_for_an_empty_index_or_k_zero(index):
    empty = VectorIndex(DIM, use_gpu=False)
    scores, ids = empty.search(unit_vectors(3), k=5)
    assert scores.shape == ids.shape == (3, 0)
    assert empty.ids().tolist() == []
    assert empty.remove([1, 2]) == 0
    assert index.search(unit_vectors(2), k=0)[1].shape == (2, 0)


def test_it_rejects_vectors_of_the_wrong_shape_or_count(index):
    with pytest.raises(ValueError, match="dimension 16"):
        index.add([1], np.ones((1, 8), np.float32))
    with pytest.raises(ValueError, match="dimension 16"):
        index.add([1], np.ones(DIM, np.float32))
    with pytest.raises(ValueError, match="differ in length"):
        index.add([1, 2], unit_vectors(3))
    index.add([], np.zeros((0, DIM), np.float32))
    assert index.ntotal == 10


def test_it_round_trips_through_save_and_load(index, tmp_path):
    path = tmp_path / "sub" / "index.faiss"
    index.save(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert {key: meta[key] for key in ("dimension", "model", "ntotal", "kind", "tombstones")} == {
        "dimension": DIM,
        "model": "test-model",
        "ntotal": 10,
        "kind": "flat",
        "tombstones": 0,
    }
    loaded = VectorIndex.load(path, use_gpu=False)
    assert loaded.info() == IndexInfo(DIM, "test-model", 10, "flat", 0, IndexParams().as_dict())
    queries = unit_vectors(4, seed=5)
    for got, want in zip(loaded.search(queries, 5), index.search(queries, 5)):
        np.testing.assert_array_equal(got, want)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_it_detects_metadata_that_does_not_match_the_index(index, tmp_path):
    path = tmp_path / "index.faiss"
    index.save(path)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["slots"] = 11
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match its metadata"):
        VectorIndex.load(path, use_gpu=False)
    meta.update(slots=10, dimension=32)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match its metadata"):
        VectorIndex.load(path, use_gpu=False)


@pytest.mark.skipif(gpu_available(), reason="a GPU build of FAISS with a device: 'auto' searches on it")
def test_it_searches_on_the_cpu_when_no_gpu_is_available(vectors):
    index = VectorIndex(DIM, use_gpu="auto")
    index.add(np.arange(10), vectors)
    _, ids = index.search(vectors[:2], k=1)
    assert ids[:, 0].tolist() == [0, 1]
    assert index.searches_on_gpu is False


@pytest.mark.skipif(gpu_available(), reason="a GPU build of FAISS with a device: a forced GPU is usable here")
def test_it_falls_back_to_the_cpu_when_a_gpu_is_forced_but_unusable(vectors):
    index = VectorIndex(DIM, use_gpu=True)  # faiss-cpu has no StandardGpuResources
    index.add(np.arange(10), vectors)
    _, ids = index.search(vectors[4], k=1)
    assert ids[0, 0] == 4
    assert index.searches_on_gpu is False


# -- IndexStore ------------------------------------------------------------------


def make_store(folder) -> IndexStore:
    return IndexStore(folder, DIM, "test-model", use_gpu=False)


def snapshot_versions(folder) -> list[int]:
    return sorted(int(re.fullmatch(r"index-(\d+)\.faiss", p.name).group(1)) for p in folder.glob("index-*.faiss"))


def test_it_starts_with_an_empty_index_and_no_manifest(tmp_path):
    store = make_store(tmp_path / "index")
    assert store.manifest() is None
    assert store.current().ntotal == 0


def test_it_writes_numbered_versions_and_prunes_old_snapshots(tmp_path):
    folder = tmp_path / "index"
    store = make_store(folder)
    vectors = unit_vectors(3)
    for version in (1, 2, 3):
        with store.writer() as index:
            index.add([version], vectors[version - 1 : version])
        manifest = store.manifest()
        assert manifest == {
            "version": version,
            "file": f"index-{version:06d}.faiss",
            "dimension": DIM,
            "model": "test-model",
            "ntotal": version,
            "kind": "flat",
            "tombstones": 0,
            "form": "text",  # how its passages were read (the store's default; retrieval/passage_forms.py)
        }
        assert (folder / manifest["file"]).exists() and (folder / manifest["file"]).with_suffix(".json").exists()
        assert snapshot_versions(folder) == list(range(max(1, version - KEEP_SNAPSHOTS + 1), version + 1))
    assert KEEP_SNAPSHOTS == 2 and snapshot_versions(folder) == [2, 3]
    assert not (folder / "index-000001.json").exists()
    assert sorted(store.current().ids().tolist()) == [1, 2, 3]


def test_it_shows_new_versions_to_another_store_on_the_same_folder(tmp_path):
    folder = tmp_path / "index"
    writer, reader = make_store(folder), make_store(folder)
    vectors = unit_vectors(4)
    with writer.writer() as index:
        index.add([1, 2], vectors[:2])
    first = reader.current()
    assert first.ntotal == 2
    assert reader.current() is first  # cached while the version is unchanged
    with writer.writer() as index:
        index.add([3, 4], vectors[2:])
    second = reader.current()
    assert second is not first and second.ntotal == 4
    _, ids = second.search(vectors[3], k=1)
    assert ids[0, 0] == 4


def test_it_starts_empty_with_a_fresh_writer(tmp_path):
    store = make_store(tmp_path / "index")
    with store.writer() as index:
        index.add([1, 2, 3], unit_vectors(3))
    with store.writer(fresh=True) as index:
        assert index.ntotal == 0
        index.add([7], unit_vectors(1, seed=4))
    assert store.manifest()["version"] == 2
    assert store.current().ids().tolist() == [7]


def test_it_keeps_the_previous_version_when_the_writer_fails(tmp_path):
    folder = tmp_path / "index"
    store = make_store(folder)
    with store.writer() as index:
        index.add([1], unit_vectors(1))
    before = store.manifest()
    with pytest.raises(RuntimeError, match="boom"):
        with store.writer() as index:
            index.add([2, 3], unit_vectors(2, seed=1))
            raise RuntimeError("boom")
    assert store.manifest() == before
    assert snapshot_versions(folder) == [1]
    assert make_store(folder).current().ids().tolist() == [1]
    with store.writer() as index:  # the lock was released
        assert index.ids().tolist() == [1]
    assert store.manifest()["version"] == 2


def test_it_raises_when_the_manifest_points_at_a_missing_snapshot(tmp_path):
    folder = tmp_path / "index"
    store = make_store(folder)
    with store.writer() as index:
        index.add([1], unit_vectors(1))
    (folder / "index-000001.faiss").unlink()
    with pytest.raises(RuntimeError, match="consistent index snapshot"):
        make_store(folder).current()
