"""Which index store serves searches and which ones writes go to.

Each retriever version has its own store (a folder under RAG_INDEX_DIR) of
dense vectors (FAISS) and BM25 terms; the registry (retrieval/store.py)
names the active version and, during a switch, the one being built to
replace it (retrieval/versions.py).
"""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from retrieval.embedding import get_embedder, model_identity
from retrieval.faiss_index import FLAT, HNSW, IndexParams
from retrieval.store import IndexRegistry, IndexStore


def index_params(count: int = 0) -> IndexParams:
    """Exact search up to RAG_INDEX_EXACT_MAX vectors, HNSW beyond."""
    kind = FLAT if count <= settings.RAG_INDEX_EXACT_MAX else HNSW
    return IndexParams(kind, settings.RAG_HNSW_M, settings.RAG_HNSW_EF_CONSTRUCTION, settings.RAG_HNSW_EF_SEARCH)


def registry() -> IndexRegistry:
    return IndexRegistry(settings.RAG_INDEX_DIR)


def resolved(entry: dict) -> dict:
    """A registry entry with its model folder filled in (None stands for the packaged embedder)."""
    return {"name": entry["name"], "model": model_identity(entry.get("model") or settings.RAG_EMBEDDER_PATH)}


def active_retriever() -> dict:
    """{"name", "model"}: the retriever version whose index serves searches
    ("base" is the packaged embedder) and its model folder."""
    return resolved(registry().state()["active"])


def store_for(name: str, model: str | None = None) -> IndexStore:
    """The index store of a retriever version (its own folder under RAG_INDEX_DIR)."""
    return _store(name, model_identity(model or settings.RAG_EMBEDDER_PATH), str(settings.RAG_INDEX_DIR))


@functools.lru_cache(maxsize=8)
def _store(name: str, model: str, root: str) -> IndexStore:
    use_gpu = {"on": True, "off": False}.get(settings.RAG_FAISS_GPU, "auto")
    return IndexStore(Path(root) / name, get_embedder(model).dimension, model, use_gpu, index_params())


def get_store() -> IndexStore:
    """The store that serves searches."""
    active = active_retriever()
    return store_for(active["name"], active["model"])


def write_targets() -> list[tuple[IndexStore, object]]:
    """(store, embedder) of every index that writes go to: the active one and
    a version being built to replace it."""
    state = registry().state()
    entries = [state["active"]] + ([state["staging"]] if state.get("staging") else [])
    found = []
    for entry in entries:
        entry = resolved(entry)
        found.append((store_for(entry["name"], entry["model"]), get_embedder(entry["model"])))
    return found


def passage_vectors(chunk_ids: list[int]):
    """The indexed vectors of these chunks, in order (so an answer's attribution
    need not embed its passages again); None when any is missing."""
    import numpy as np

    found = get_store().current().vectors(chunk_ids)
    if len(found) != len(chunk_ids):
        return None
    return np.vstack([found[pk] for pk in chunk_ids]) if chunk_ids else None


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith(("RAG_EMBED", "RAG_INDEX", "RAG_FAISS", "RAG_HNSW")):
        _store.cache_clear()
