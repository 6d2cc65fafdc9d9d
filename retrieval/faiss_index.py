"""A FAISS inner-product index keyed by chunk primary keys. Pure: no Django.

Vectors are L2-normalised, so inner product is cosine similarity. Two kinds:

    flat   exact search (IndexFlatIP): every query scans every vector. Exact,
           and fast enough up to about a hundred thousand chunks.
    hnsw   approximate search (IndexHNSWFlat): a graph walk whose breadth is
           efSearch; recall@10 against exact is tested (>= 0.95 at the
           default settings). Build time grows with size, so an index
           past the exact limit is rebuilt as HNSW in the background
           (retrieval/indexing.py: maintain_index).

Both sit inside an IndexIDMap2, whose external ids are chunk primary keys and
which can reconstruct a chunk's vector from its id.

Deletions. A flat index removes ids physically. An HNSW graph cannot remove a
node, and a GPU index cannot remove ids either; so in an HNSW index a deleted
id becomes a tombstone: its slot's label is set to -1 (hidden from every
search and lookup) while its vector stays in the graph as a waypoint. Searches
over-fetch by the tombstone share and trim back to k. `compact()` rebuilds the
graph from the live vectors; services do that on the CPU copy once tombstones
pass a share in settings.

GPU. The CPU index is the master copy (add/remove/save). When CUDA and a GPU
build of FAISS are present, searches run on a GPU copy made on load: an exact
GpuIndexFlatIP of the live vectors (brute force on a GPU beats a CPU graph at
these sizes, and a GPU copy never has to remove anything: each snapshot
version gets a fresh copy, tombstones excluded).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FLAT, HNSW = "flat", "hnsw"
KINDS = (FLAT, HNSW)


def gpu_available() -> bool:
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


@dataclass(frozen=True)
class IndexParams:
    """How an index is built and searched (settings RAG_INDEX_*, RAG_HNSW_*)."""

    kind: str = FLAT
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
        }


@dataclass(frozen=True)
class IndexInfo:
    dimension: int
    model: str
    ntotal: int
    kind: str = FLAT
    tombstones: int = 0
    params: dict = field(default_factory=dict)


class VectorIndex:
    def __init__(
        self, dimension: int, model: str = "", use_gpu: bool | str = "auto", params: IndexParams | None = None
    ):
        self.dimension = dimension
        self.model = model
        self.params = params or IndexParams()
        self._cpu = self._empty(dimension, self.params)
        self._use_gpu = gpu_available() if use_gpu == "auto" else bool(use_gpu)
        self._gpu = None
        self._gpu_lock = threading.Lock()
        self._dead = 0  # tombstones (HNSW): slots whose label is -1

    @staticmethod
    def _empty(dimension: int, params: IndexParams):
        import faiss

        if params.kind == HNSW:
            inner = faiss.IndexHNSWFlat(dimension, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = params.ef_construction
            inner.hnsw.efSearch = params.ef_search
        else:
            inner = faiss.IndexFlatIP(dimension)
        return faiss.IndexIDMap2(inner)

    @property
    def kind(self) -> str:
        return self.params.kind

    # -- writes (CPU master copy) --------------------------------------
    def add(self, ids, vectors) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if np.any(ids < 0):
            raise ValueError("ids must not be negative")
        if len(ids) == 0:
            return
        self.remove(ids)  # re-adding an id replaces its vector (idempotent writes)
        self._cpu.add_with_ids(vectors, ids)
        self._gpu = None

    def remove(self, ids) -> int:
        """Remove these ids (those present); returns how many went."""
        import faiss

        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if len(ids) == 0 or self._cpu.ntotal == 0:
            return 0
        self._gpu = None
        if self.kind == FLAT:
            return int(self._cpu.remove_ids(faiss.IDSelectorBatch(ids)))
        labels = self._labels()
        slots = np.flatnonzero(np.isin(labels, ids))
        if len(slots) == 0:
            return 0
        labels[slots] = -1
        faiss.copy_array_to_vector(labels, self._cpu.id_map)
        self._rebuild_rev_map(labels)
        return len(slots)

    def _rebuild_rev_map(self, labels: np.ndarray) -> None:
        # IndexIDMap2's id -> slot map (used by reconstruct); -1 never is a chunk id.
        self._cpu.construct_rev_map()
        self._dead = int(np.count_nonzero(labels < 0))

    def compact(self) -> VectorIndex:
        """A new index of the same kind holding only the live vectors (a
        rebuild: for HNSW this takes a while, so run it off the write path)."""
        return self.rebuilt(self.params)

    def rebuilt(self, params: IndexParams) -> VectorIndex:
        """A new index built with `params` from this one's live vectors."""
        fresh = VectorIndex(self.dimension, self.model, use_gpu=self._use_gpu, params=params)
        ids, vectors = self.live()
        for start in range(0, len(ids), 65536):
            fresh._cpu.add_with_ids(vectors[start : start + 65536], ids[start : start + 65536])
        return fresh

    # -- reads ----------------------------------------------------------
    def _labels(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._cpu.id_map).astype(np.int64) if self._cpu.ntotal else np.zeros(0, np.int64)

    @property
    def slots(self) -> int:
        """Stored vectors, tombstones included."""
        return int(self._cpu.ntotal)

    @property
    def tombstones(self) -> int:
        return self._dead

    @property
    def ntotal(self) -> int:
        """Live vectors."""
        return int(self._cpu.ntotal) - self.tombstones

    def ids(self) -> np.ndarray:
        labels = self._labels()
        return labels[labels >= 0]

    def contains(self, ids) -> set[int]:
        """Those of `ids` the index holds."""
        return set(np.intersect1d(self.ids(), np.asarray(list(ids), dtype=np.int64)).tolist())

    def batches(self, size: int = 100_000):
        """(ids, vectors) of every live entry, in batches of `size`."""
        ids, vectors = self.live()
        for start in range(0, len(ids), size):
            yield ids[start : start + size], vectors[start : start + size]

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live entry, in slot order."""
        if self._cpu.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        labels = self._labels()
        vectors = self._cpu.index.reconstruct_n(0, self._cpu.ntotal)
        keep = labels >= 0
        return labels[keep], np.ascontiguousarray(vectors[keep])

    def vectors(self, ids) -> dict[int, np.ndarray]:
        """The stored vectors of those ids that are in the index (IndexIDMap2
        keeps the id -> slot map that reconstruct needs)."""
        found = {}
        for pk in ids:
            try:
                found[int(pk)] = self._cpu.reconstruct(int(pk))
            except RuntimeError:  # not in the index: faiss raises for an unknown id
                continue
        return found

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (len(queries), k), best first; missing slots have id -1."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        live = self.ntotal
        if live == 0 or k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        k = min(k, live)
        searcher, exact = self._searcher()
        if exact or self.kind == FLAT:
            return searcher.search(queries, k)
        import faiss

        # Over-fetch past tombstones (their share of the graph, and some), then trim.
        dead = self.tombstones
        fetch = min(self.slots, k if not dead else k + int(k * dead / max(live, 1) * 2) + 8)
        ef = max(self.params.ef_search, fetch)
        scores, ids = searcher.search(queries, fetch, params=faiss.SearchParametersHNSW(efSearch=ef))
        if fetch == k:
            return scores, ids
        return _trim(scores, ids, k)

    @property
    def searches_on_gpu(self) -> bool:
        """Whether searches run on an exact GPU copy of the index (made on first use)."""
        return self._searcher()[1]

    def _searcher(self):
        """(index to search, whether it is an exact GPU copy)."""
        if not self._use_gpu:
            return self._cpu, False
        with self._gpu_lock:
            if self._gpu is None:
                try:
                    self._gpu = self._gpu_copy()
                except Exception:  # a GPU build without a usable device
                    log.exception("GPU FAISS failed; searching on the CPU")
                    self._use_gpu = False
                    return self._cpu, False
            return self._gpu, True

    def _gpu_copy(self):
        """An exact GPU index of the live vectors, with the same external ids."""
        import faiss

        ids, vectors = self.live()
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        flat.add_with_ids(vectors, ids)
        return faiss.index_cpu_to_gpu(_gpu_resources(), 0, flat)

    # -- persistence ----------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write index + JSON metadata beside it, each atomically."""
        import faiss

        path = Path(path)
        _atomic_write(path, faiss.serialize_index(self._cpu).tobytes())
        _atomic_write(path.with_suffix(".json"), json.dumps(self.meta()).encode())

    def meta(self) -> dict:
        return {
            "dimension": self.dimension,
            "model": self.model,
            "ntotal": self.ntotal,
            "slots": self.slots,
            "tombstones": self.tombstones,
            "kind": self.kind,
            "params": self.params.as_dict(),
        }

    @classmethod
    def load(cls, path: str | Path, use_gpu: bool | str = "auto") -> VectorIndex:
        import faiss

        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        cpu = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
        slots = meta.get("slots", meta["ntotal"])
        if cpu.ntotal != slots or cpu.d != meta["dimension"]:
            raise ValueError(f"index {path} does not match its metadata ({cpu.ntotal} vs {slots} vectors)")
        params = IndexParams(**meta["params"]) if meta.get("params") else IndexParams()
        index = cls(meta["dimension"], meta.get("model", ""), use_gpu, params)
        index._cpu = faiss.downcast_index(cpu) if not isinstance(cpu, faiss.IndexIDMap2) else cpu
        if params.kind == HNSW and meta.get("tombstones"):
            index._dead = int(meta["tombstones"])
        return index

    def info(self) -> IndexInfo:
        return IndexInfo(self.dimension, self.model, self.ntotal, self.kind, self.tombstones, self.params.as_dict())


def _trim(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop tombstones (id -1) from each row, keep the first k, pad with -1."""
    out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    for row in range(len(ids)):
        keep = ids[row] >= 0
        found = ids[row][keep][:k]
        out_ids[row, : len(found)] = found
        out_scores[row, : len(found)] = scores[row][keep][:k]
    return out_scores, out_ids


_resources = None


def _gpu_resources():
    global _resources
    if _resources is None:
        import faiss

        _resources = faiss.StandardGpuResources()
    return _resources


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
