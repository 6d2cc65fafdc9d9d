"""A FAISS inner-product index keyed by chunk primary keys. Pure: no Django.

Vectors are L2-normalised, so inner product is cosine similarity. The CPU
index is the master copy (add/remove/save); when CUDA and a GPU build of FAISS
are present, searches run on a GPU clone made on load.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def gpu_available() -> bool:
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


@dataclass(frozen=True)
class IndexInfo:
    dimension: int
    model: str
    ntotal: int


class VectorIndex:
    def __init__(self, dimension: int, model: str = "", use_gpu: bool | str = "auto"):
        import faiss

        self.dimension = dimension
        self.model = model
        self._cpu = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._use_gpu = gpu_available() if use_gpu == "auto" else bool(use_gpu)
        self._gpu = None

    # -- writes (CPU master copy) --------------------------------------
    def add(self, ids, vectors) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {vectors.shape}")
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        if len(ids) == 0:
            return
        self.remove(ids)  # re-adding an id replaces its vector (idempotent writes)
        self._cpu.add_with_ids(vectors, ids)
        self._gpu = None

    def remove(self, ids) -> int:
        import faiss

        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0 or self._cpu.ntotal == 0:
            return 0
        removed = int(self._cpu.remove_ids(faiss.IDSelectorBatch(ids)))
        self._gpu = None
        return removed

    # -- reads ----------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self._cpu.ntotal)

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._cpu.id_map).astype(np.int64) if self.ntotal else np.zeros(0, dtype=np.int64)

    def vectors(self, ids) -> dict[int, np.ndarray]:
        """The stored vectors of those ids that are in the index (IndexIDMap2
        keeps the id -> row map that reconstruct needs)."""
        found = {}
        for pk in ids:
            try:
                found[int(pk)] = self._cpu.reconstruct(int(pk))
            except RuntimeError:  # not in the index: faiss raises for an unknown id
                continue
        return found

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (len(queries), k); missing slots have id -1."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if self.ntotal == 0 or k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        k = min(k, self.ntotal)
        return self._searcher().search(queries, k)

    def _searcher(self):
        if not self._use_gpu:
            return self._cpu
        if self._gpu is None:
            import faiss

            try:
                self._gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, self._cpu)
            except Exception:  # a GPU build without a usable device
                log.exception("GPU FAISS failed; searching on the CPU")
                self._use_gpu = False
                return self._cpu
        return self._gpu

    # -- persistence ----------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write index + JSON metadata beside it, each atomically."""
        import faiss

        path = Path(path)
        _atomic_write(path, faiss.serialize_index(self._cpu).tobytes())
        meta = {"dimension": self.dimension, "model": self.model, "ntotal": self.ntotal}
        _atomic_write(path.with_suffix(".json"), json.dumps(meta).encode())

    @classmethod
    def load(cls, path: str | Path, use_gpu: bool | str = "auto") -> "VectorIndex":
        import faiss

        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        cpu = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
        if cpu.ntotal != meta["ntotal"] or cpu.d != meta["dimension"]:
            raise ValueError(f"index {path} does not match its metadata ({cpu.ntotal} vs {meta['ntotal']} vectors)")
        index = cls(meta["dimension"], meta.get("model", ""), use_gpu)
        index._cpu = cpu
        return index

    def info(self) -> IndexInfo:
        return IndexInfo(self.dimension, self.model, self.ntotal)


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
