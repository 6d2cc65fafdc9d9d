"""Retrieval's seam to the database: embed documents, keep the index, search."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import Q
from django.dispatch import receiver

from ingestion import services as ingestion
from ingestion.models import Chunk, Collection, Document
from retrieval.embedding import get_embedder, model_identity
from retrieval.store import IndexStore

log = logging.getLogger(__name__)

Status = Document.Status
PROGRESS_EVERY = 256  # chunks per embedding call and progress write (a heartbeat every few seconds)
# Indexed documents, and ones being re-indexed after they were (their current
# chunks stay searchable until the new version is in).
SEARCHABLE = Q(document__status=Status.INDEXED) | Q(
    document__indexed_at__isnull=False, document__status__in=[Status.PENDING, Status.PARSING, Status.EMBEDDING]
)


class SearchError(ValueError):
    """Bad search input; the message is for the caller."""


@dataclass(frozen=True)
class SearchHit:
    rank: int
    score: float
    chunk_id: int
    document_id: int
    title: str
    filename: str
    collection: str
    page: int | None
    heading: str
    char_start: int
    char_end: int
    text: str

    def as_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def get_store() -> IndexStore:
    embedder = get_embedder()
    use_gpu = {"on": True, "off": False}.get(settings.RAG_FAISS_GPU, "auto")
    return IndexStore(settings.RAG_INDEX_DIR, embedder.dimension, model_identity(), use_gpu)


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith(("RAG_EMBED", "RAG_INDEX", "RAG_FAISS")):
        get_store.cache_clear()


def enqueue_safely(task, *args) -> None:
    try:
        task.delay(*args)
    except Exception:  # a broker outage must not break the request that caused it
        log.exception("Could not enqueue %s%r", task.name, args)


# -- writing -------------------------------------------------------------
def index_document(document_id: int) -> None:
    """Embed a chunked document's passages that have no vector yet and add
    them to the index. Raises ingestion.Cancelled if the document is cancelled
    or deleted meanwhile (checked at every batch)."""
    import numpy as np

    embedder = get_embedder()
    chunks = list(Chunk.objects.filter(document_id=document_id).order_by("ordinal").values_list("pk", "text"))
    present = set(get_store().current().ids().tolist())
    todo = [(pk, text) for pk, text in chunks if pk not in present]  # unchanged passages keep their vectors
    todo.sort(key=lambda item: len(item[1]), reverse=True)  # batches of like length pad least
    done = len(chunks) - len(todo)
    ingestion.record_progress(document_id, done)
    ids, vectors = [], []
    started = time.perf_counter()
    batch = max(PROGRESS_EVERY, settings.RAG_EMBED_BATCH_SIZE)
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        vectors.append(embedder.embed_passages([text for _, text in part]))
        ids.extend(pk for pk, _ in part)
        ingestion.record_progress(document_id, done + len(ids))
    embedded = time.perf_counter()
    if ids:
        with get_store().writer() as index:
            index.add(ids, np.vstack(vectors))
    ingestion.mark_indexed(document_id)
    log.info("Document %s: embedded %s passages in %.2f s (%s reused), index write %.2f s", document_id,
             len(ids), embedded - started, done, time.perf_counter() - embedded)


def remove_chunks(chunk_ids: list[int]) -> int:
    if not chunk_ids:
        return 0
    with get_store().writer() as index:
        return index.remove(chunk_ids)


def rebuild_index(progress=None) -> int:
    """Re-embed every stored chunk of every indexed document into a fresh index."""
    embedder = get_embedder()
    queryset = Chunk.objects.filter(SEARCHABLE).order_by("pk").values_list("pk", "text")
    total = queryset.count()
    done = 0
    with get_store().writer(fresh=True) as index:
        ids, texts = [], []
        for pk, text in queryset.iterator(chunk_size=512):
            ids.append(pk)
            texts.append(text)
            if len(ids) >= 256:
                index.add(ids, embedder.embed_passages(texts))
                done += len(ids)
                ids, texts = [], []
                if progress:
                    progress(done, total)
        if ids:
            index.add(ids, embedder.embed_passages(texts))
            done += len(ids)
    if progress:
        progress(done, total)
    return done


# -- reading -------------------------------------------------------------
def search(query: str, *, user=None, k: int | None = None, collections: list[str] | None = None) -> list[SearchHit]:
    """Top-k passages for `query` among the documents `user` may read
    (`user=None` is a trusted caller such as the CLI)."""
    return search_many([query], user=user, k=k, collections=collections)[0]


def search_many(queries: list[str], *, user=None, k: int | None = None, collections: list[str] | None = None) -> list[list[SearchHit]]:
    k = settings.RAG_SEARCH_DEFAULT_K if k is None else k
    if not 1 <= k <= settings.RAG_SEARCH_MAX_K:
        raise SearchError(f"k must be between 1 and {settings.RAG_SEARCH_MAX_K}.")
    queries = [q.strip() for q in queries]
    if any(not q for q in queries):
        raise SearchError("The query is empty.")
    readable = Collection.objects.readable_by(user)
    if collections:
        found = set(readable.filter(name__in=collections).values_list("name", flat=True))
        missing = sorted(set(collections) - found)
        if missing:
            raise SearchError(f"Unknown collection: {', '.join(missing)}.")
        readable = readable.filter(name__in=collections)
    collection_ids = set(readable.values_list("pk", flat=True))
    index = get_store().current()
    if index.ntotal == 0 or not collection_ids:
        return [[] for _ in queries]
    vectors = get_embedder().embed_queries(queries)
    return [_hits(index, vector, k, collection_ids) for vector in vectors]


def _hits(index, vector, k, collection_ids) -> list[SearchHit]:
    """Search, then keep only readable, indexed chunks; widen until k are found."""
    fetch = min(index.ntotal, max(4 * k, 32))
    while True:
        scores, ids = index.search(vector, fetch)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        chunks = {
            c.pk: c
            for c in Chunk.objects.filter(
                pk__in=[i for i, _ in pairs],
                document__collection_id__in=collection_ids,
            ).filter(SEARCHABLE).select_related("document", "document__collection")
        }
        hits = [(chunks[i], s) for i, s in pairs if i in chunks][:k]
        if len(hits) >= k or fetch >= index.ntotal:
            break
        fetch = min(index.ntotal, fetch * 4)
    return [
        SearchHit(
            rank=rank,
            score=round(score, 6),
            chunk_id=chunk.pk,
            document_id=chunk.document_id,
            title=chunk.document.title,
            filename=chunk.document.original_filename,
            collection=chunk.document.collection.name,
            page=chunk.page,
            heading=chunk.heading,
            char_start=chunk.char_start,
            char_end=chunk.char_end,
            text=chunk.text,
        )
        for rank, (chunk, score) in enumerate(hits, start=1)
    ]
