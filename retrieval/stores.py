"""Which index store serves searches and which ones writes go to.

Each retriever version has its own store of dense vectors and BM25 terms,
per passage form (retrieval/passage_forms.py). By default a store is a folder under
RAG_INDEX_DIR (FAISS and bm25s: "<name>" holds the text form,
"<name>-contextual" the contextual one) and the registry, which names the
active version and its form and, during a switch, the one being built to
replace it (retrieval/versions.py), is a file beside them (retrieval/snapshots.py).
With RAG_MILVUS_URI set, a store is a Milvus collection (retrieval/milvus_store.py)
and the registry a database row, so that every host sees the same ones.
"""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from retrieval import passage_forms
from retrieval.embedding import get_embedder, model_identity
from retrieval.faiss_index import FLAT, HNSW, IndexParams
from retrieval.snapshots import IndexRegistry, IndexStore

FAISS, MILVUS = "faiss", "milvus"


def index_params(count: int = 0) -> IndexParams:
    """Exact search up to RAG_INDEX_EXACT_MAX vectors, HNSW beyond."""
    kind = FLAT if count <= settings.RAG_INDEX_EXACT_MAX else HNSW
    return IndexParams(kind, settings.RAG_HNSW_M, settings.RAG_HNSW_EF_CONSTRUCTION, settings.RAG_HNSW_EF_SEARCH)


def backend() -> str:
    """Where the indexes live: "milvus" when RAG_MILVUS_URI is set, else "faiss"."""
    return MILVUS if settings.RAG_MILVUS_URI else FAISS


def registry():
    """The index registry: a file beside the FAISS stores, a database row for Milvus."""
    if backend() == MILVUS:
        from retrieval.registry import DatabaseRegistry

        return DatabaseRegistry()
    return IndexRegistry(settings.RAG_INDEX_DIR)


def resolved(entry: dict) -> dict:
    """A registry entry with its model folder filled in (None stands for the
    packaged embedder) and its passage form (an entry written before forms
    existed: the text form when its index exists, else RAG_PASSAGE_FORM)."""
    return {
        "name": entry["name"],
        "model": model_identity(entry.get("model") or settings.RAG_EMBEDDER_PATH),
        "form": entry.get("form") or _unrecorded_form(entry["name"]),
    }


def _unrecorded_form(name: str) -> str:
    if backend() == MILVUS:
        return settings.RAG_PASSAGE_FORM  # Milvus entries always record their form
    if (Path(settings.RAG_INDEX_DIR) / folder_name(name, passage_forms.TEXT) / "manifest.json").exists():
        return passage_forms.TEXT  # an index made before contextual passages
    return settings.RAG_PASSAGE_FORM


def folder_name(name: str, form: str) -> str:
    """The folder of a version's index in a passage form."""
    return name if form == passage_forms.TEXT else f"{name}-{form}"


def active_retriever() -> dict:
    """{"name", "model", "form"}: the retriever version whose index serves
    searches ("base" is the packaged embedder), its model folder and the
    passage form of its index."""
    return resolved(registry().state()["active"])


def store_for(name: str, model: str | None = None, form: str | None = None) -> IndexStore:
    """The index store of a retriever version in a passage form (by default
    RAG_PASSAGE_FORM): its own folder under RAG_INDEX_DIR."""
    form = form or settings.RAG_PASSAGE_FORM
    return store_in(folder_name(name, form), model, form)


def store_in(folder: str, model: str | None, form: str):
    """The index store named `folder` (under RAG_INDEX_DIR, or a Milvus collection)."""
    model = model_identity(model or settings.RAG_EMBEDDER_PATH)
    if backend() == MILVUS:
        return _milvus_store(folder, model, form, settings.RAG_MILVUS_URI, settings.RAG_MILVUS_PREFIX)
    return _store(folder, model, str(settings.RAG_INDEX_DIR), form)


def drop_index(name: str) -> None:
    """Remove every index of the retriever version `name` (all its forms)."""
    import shutil

    for form in passage_forms.FORMS:
        if backend() == MILVUS:
            store_in(folder_name(name, form), None, form).drop()
        else:
            shutil.rmtree(Path(settings.RAG_INDEX_DIR) / folder_name(name, form), ignore_errors=True)


@functools.lru_cache(maxsize=8)
def _store(folder: str, model: str, root: str, form: str) -> IndexStore:
    use_gpu = {"on": True, "off": False}.get(settings.RAG_FAISS_GPU, "auto")
    return IndexStore(Path(root) / folder, get_embedder(model).dimension, model, use_gpu, index_params(), form)


@functools.lru_cache(maxsize=8)
def _milvus_store(folder: str, model: str, form: str, uri: str, prefix: str):
    from retrieval import milvus_store

    token = settings.RAG_MILVUS_TOKEN
    return milvus_store.MilvusStore(
        lambda: milvus_store.client(uri, token),
        milvus_store.collection_name(prefix, folder),
        get_embedder(model).dimension,
        model,
        form,
        chunk_placement,
        index_type=settings.RAG_MILVUS_INDEX,
        hnsw_m=settings.RAG_HNSW_M,
        ef_construction=settings.RAG_HNSW_EF_CONSTRUCTION,
        ef_search=settings.RAG_HNSW_EF_SEARCH,
        analyzer=settings.RAG_MILVUS_ANALYZER,
    )


def chunk_placement(chunk_ids: list[int]) -> dict[int, tuple[int, int]]:
    """chunk id -> (document id, collection id), from the database: what a
    Milvus row carries for the access filter (a chunk never changes document,
    nor a document collection)."""
    from ingestion.models import Chunk

    return {
        pk: (document, collection)
        for pk, document, collection in Chunk.objects.filter(pk__in=chunk_ids).values_list(
            "pk", "document_id", "document__collection_id"
        )
    }


def get_store():
    """The store that serves searches."""
    active = active_retriever()
    return store_for(active["name"], active["model"], active["form"])


def write_targets() -> list[tuple[IndexStore, object]]:
    """(store, embedder) of every index that writes go to: the active one and
    a version being built to replace it. The active index's form is recorded
    in the registry on the way, so that a later change of RAG_PASSAGE_FORM
    does not take searches to another (empty) folder: forms change by a switch."""
    state = registry().state()
    if "form" not in state["active"]:
        with registry().changing() as state:
            state["active"].setdefault("form", resolved(state["active"])["form"])
    entries = [state["active"]] + ([state["staging"]] if state.get("staging") else [])
    found = []
    for entry in entries:
        entry = resolved(entry)
        found.append((store_for(entry["name"], entry["model"], entry["form"]), get_embedder(entry["model"])))
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
    if setting.startswith(("RAG_EMBED", "RAG_INDEX", "RAG_FAISS", "RAG_HNSW", "RAG_PASSAGE_FORM", "RAG_MILVUS")):
        _store.cache_clear()
        _milvus_store.cache_clear()
