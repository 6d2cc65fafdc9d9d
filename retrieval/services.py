"""Retrieval's seam to the database: embed documents, keep the indexes, search.

Two indexes describe the same chunks, in one versioned store: dense vectors
(FAISS) and BM25 terms. Every write changes both, whatever the search settings,
so either side can be switched on at any time. A search runs the enabled
retrievers, keeps only chunks the user may read, and fuses the rankings with
reciprocal rank fusion (retrieval/fusion.py).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
import weakref
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from dataclasses import asdict, dataclass, field

import numpy as np

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver

from ingestion import services as ingestion
from ingestion.models import Chunk, Collection, Document
from retrieval.embedding import get_embedder, model_identity
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.faiss_index import FLAT, HNSW, IndexParams
from retrieval.store import IndexRegistry, IndexStore

log = logging.getLogger(__name__)

Status = Document.Status
PROGRESS_EVERY = 256  # chunks per embedding call and progress write (a heartbeat every few seconds)
METHODS = ("dense", "bm25")
# Indexed documents, and ones being re-indexed after they were (their current
# chunks stay searchable until the new version is in).
SEARCHABLE_DOCUMENTS = Q(status=Status.INDEXED) | Q(
    indexed_at__isnull=False, status__in=[Status.PENDING, Status.PARSING, Status.EMBEDDING]
)
SEARCHABLE = Q(document__status=Status.INDEXED) | Q(  # the same, seen from a chunk
    document__indexed_at__isnull=False, document__status__in=[Status.PENDING, Status.PARSING, Status.EMBEDDING]
)


class SearchError(ValueError):
    """Bad search input; the message is for the caller."""


@dataclass(frozen=True)
class SearchHit:
    """One passage of a result. `score` is the cosine similarity of the query
    and the passage's vector, whichever retriever found it (a chunk that only
    BM25 found has its vector read back from FAISS), so a threshold on it
    means the same in every search mode; `rank` follows the fused order, so
    scores need not decrease with rank in a hybrid search.
    `scores`: {"dense": that cosine, "bm25": the BM25 score, or None when BM25
    did not rank the passage, "rrf": the fused reciprocal-rank score}."""

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
    scores: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# -- which index serves ----------------------------------------------------
def index_params(count: int = 0) -> IndexParams:
    """Exact search up to RAG_INDEX_EXACT_MAX vectors, HNSW beyond."""
    kind = FLAT if count <= settings.RAG_INDEX_EXACT_MAX else HNSW
    return IndexParams(kind, settings.RAG_HNSW_M, settings.RAG_HNSW_EF_CONSTRUCTION, settings.RAG_HNSW_EF_SEARCH)


def registry() -> IndexRegistry:
    return IndexRegistry(settings.RAG_INDEX_DIR)


def _resolved(entry: dict) -> dict:
    return {"name": entry["name"], "model": model_identity(entry.get("model") or settings.RAG_EMBEDDER_PATH)}


def active_retriever() -> dict:
    """{"name", "model"}: the retriever version whose index serves searches
    ("base" is the packaged embedder) and its model folder."""
    return _resolved(registry().state()["active"])


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


def _targets() -> list[tuple[IndexStore, object]]:
    """(store, embedder) of every index that writes go to: the active one and
    a version being built to replace it."""
    state = registry().state()
    entries = [state["active"]] + ([state["staging"]] if state.get("staging") else [])
    found = []
    for entry in entries:
        entry = _resolved(entry)
        found.append((store_for(entry["name"], entry["model"]), get_embedder(entry["model"])))
    return found


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith(("RAG_EMBED", "RAG_INDEX", "RAG_FAISS", "RAG_HNSW")):
        _store.cache_clear()


def enqueue_safely(task, *args) -> None:
    try:
        task.delay(*args)
    except Exception:  # a broker outage must not break the request that caused it
        log.exception("Could not enqueue %s%r", task.name, args)


# -- writing -------------------------------------------------------------
def index_document(document_id: int) -> None:
    """Embed a chunked document's passages that have no vector yet and add
    them, with their BM25 terms, to every target index (the active one, and a
    version being built). Raises ingestion.Cancelled if the document is
    cancelled or deleted meanwhile (checked at every batch)."""
    chunks = list(Chunk.objects.filter(document_id=document_id).order_by("ordinal").values_list("pk", "text"))
    targets = _targets()
    for _store_, embedder in targets:
        embedder.warm_up()  # a first load takes seconds: done before the heartbeat below
    plans = []
    for store, embedder in targets:
        present = set(store.current().ids().tolist())
        todo = [(pk, text) for pk, text in chunks if pk not in present]  # unchanged passages keep their vectors
        todo.sort(key=lambda item: len(item[1]), reverse=True)  # batches of like length pad least
        in_bm25 = set(store.current_bm25().ids().tolist())
        lexical = [(pk, text) for pk, text in chunks if pk not in in_bm25]  # also heals an index made before BM25
        plans.append((store, embedder, todo, lexical))
    total = sum(len(todo) for _s, _e, todo, _l in plans)
    done = len(chunks) * len(plans) - total
    progress = lambda: ingestion.record_progress(document_id, done // len(plans))  # noqa: E731
    progress()
    started = time.perf_counter()
    batch = max(PROGRESS_EVERY, settings.RAG_EMBED_BATCH_SIZE)
    for store, embedder, todo, lexical in plans:
        ids, vectors = [], []
        for start in range(0, len(todo), batch):
            part = todo[start:start + batch]
            vectors.append(embedder.embed_passages([text for _, text in part]))
            ids.extend(pk for pk, _ in part)
            done += len(part)
            progress()
        if ids or lexical:
            with store.write() as snapshot:
                if ids:
                    snapshot.vectors.add(ids, np.vstack(vectors))
                if lexical:
                    snapshot.bm25.add([pk for pk, _ in lexical], [text for _, text in lexical])
                _plan_maintenance(store, snapshot.vectors)
    ingestion.mark_indexed(document_id)
    log.info("Document %s: embedded %s passages into %s index(es) in %.2f s", document_id, total, len(plans),
             time.perf_counter() - started)


def remove_chunks(chunk_ids: list[int]) -> int:
    """Remove chunks from every target's indexes; returns how many vectors
    went from the active one."""
    if not chunk_ids:
        return 0
    removed = []
    for store, _embedder in _targets():
        with store.write() as snapshot:
            snapshot.bm25.remove(chunk_ids)
            removed.append(snapshot.vectors.remove(chunk_ids))
            _plan_maintenance(store, snapshot.vectors)
    return removed[0]


def rebuild_index(progress=None) -> int:
    """Re-embed and re-tokenise every stored chunk of every indexed document
    into fresh indexes (exact or HNSW by the corpus size)."""
    store, embedder = _targets()[0]
    queryset = Chunk.objects.filter(SEARCHABLE).order_by("pk").values_list("pk", "text")
    total = queryset.count()
    done = 0
    with store.write(fresh=True, params=index_params(total)) as snapshot:
        ids, texts = [], []
        for pk, text in queryset.iterator(chunk_size=512):
            ids.append(pk)
            texts.append(text)
            if len(ids) >= 256:
                snapshot.vectors.add(ids, embedder.embed_passages(texts))
                snapshot.bm25.add(ids, texts)
                done += len(ids)
                ids, texts = [], []
                if progress:
                    progress(done, total)
        if ids:
            snapshot.vectors.add(ids, embedder.embed_passages(texts))
            snapshot.bm25.add(ids, texts)
            done += len(ids)
        snapshot.bm25.dirty = True  # an empty corpus is a BM25 index too
    if progress:
        progress(done, total)
    return done


# -- index maintenance off the write path ------------------------------------
def maintenance_due(index) -> IndexParams | None:
    """The parameters to rebuild an index with, or None: a flat index past the
    exact-search limit becomes HNSW (an HNSW index that shrank well below it
    becomes flat again), and an HNSW index whose tombstones pass
    RAG_INDEX_COMPACT_SHARE of its slots is compacted."""
    wanted = index_params(index.ntotal)
    if index.kind == FLAT and wanted.kind == HNSW:
        return wanted
    if index.kind == HNSW and index.ntotal < settings.RAG_INDEX_EXACT_MAX // 2:
        return index_params(index.ntotal)
    if index.tombstones and index.tombstones > settings.RAG_INDEX_COMPACT_SHARE * index.slots:
        return index.params
    return None


def _plan_maintenance(store: IndexStore, index) -> None:
    """After a write: queue a background rebuild when one is due (at most one
    per store at a time; a marker file stands for the one queued or running)."""
    if maintenance_due(index) is None:
        return
    marker = store.folder / ".rebuilding"
    try:
        if time.time() - marker.stat().st_mtime < 3600:
            return
    except FileNotFoundError:
        pass
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    from retrieval.tasks import maintain_index

    transaction.on_commit(lambda: enqueue_safely(maintain_index, store.folder.name, store.model))


def maintain_index(name: str | None = None, model: str | None = None) -> str:
    """Rebuild a store's vector index if maintenance_due says so: built from a
    snapshot WITHOUT the write lock (an HNSW graph of a million vectors takes
    minutes; ingestion goes on meanwhile), then, under the lock, brought up to
    date with the writes made since and swapped in. Returns what was done."""
    if name is None:
        active = active_retriever()
        name, model = active["name"], active["model"]
    store = store_for(name, model)
    try:
        version, copy = store.snapshot_copy()
        params = maintenance_due(copy) if copy is not None else None
        if params is None:
            return "nothing to do"
        started = time.perf_counter()
        built = copy.rebuilt(params)
        built_ids = built.ids()
        log.info("Built a %s index of %s vectors from version %s in %.1f s", params.kind, built.ntotal, version,
                 time.perf_counter() - started)
        with store.write() as snapshot:
            current = snapshot.vectors
            now_ids = current.ids()
            gone = np.setdiff1d(built_ids, now_ids, assume_unique=True)
            new = np.setdiff1d(now_ids, built_ids, assume_unique=True)
            built.remove(gone)
            if len(new):
                found = current.vectors(new.tolist())
                built.add(list(found), np.vstack(list(found.values())))
            snapshot.vectors = built
        return f"rebuilt as {params.kind} ({built.ntotal} vectors; {len(new)} added and {len(gone)} removed since the snapshot)"
    finally:
        (store.folder / ".rebuilding").unlink(missing_ok=True)


# -- retriever versions (issue #6) ------------------------------------------
def switch_retriever(name: str, model_path: str, progress=None) -> int:
    """Serve searches from the retriever version `name` (embedder folder
    `model_path`): its index, in its own folder, is built or brought up to
    date in the background (documents indexed meanwhile are written to it as
    well as to the serving index, which keeps serving), then switched in
    atomically. Rolling back is switching to an earlier version. Returns the
    number of vectors of the new index. On failure the old index keeps serving.
    `progress(done, total)` is called as passages are embedded."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or ""):
        raise ValueError(f"Bad retriever version name {name!r}.")
    model = model_identity(model_path)
    if not os.path.isdir(model):
        raise FileNotFoundError(f"Embedder folder not found: {model}")
    entry = {"name": name, "model": None if model == model_identity(settings.RAG_EMBEDDER_PATH) else model}
    reg = registry()
    with reg.changing() as state:
        if state["active"]["name"] == name:
            state["staging"] = None if (state.get("staging") or {}).get("name") == name else state.get("staging")
            entry = None
        elif state.get("staging") and state["staging"]["name"] != name:
            raise RuntimeError(f"Retriever version {state['staging']['name']} is being switched in; try again when it is done.")
        else:
            state["staging"] = entry
    if entry is None:
        return store_for(name, model).current().ntotal
    try:
        store = store_for(name, model)  # loads the model: a broken one must not stay staged
        _fill(store, get_embedder(model), progress)
        with reg.changing() as state:
            state["active"], state["staging"] = entry, None
    except BaseException:
        with reg.changing() as state:
            if (state.get("staging") or {}).get("name") == name:
                state["staging"] = None
        raise
    # Catch what a writer that looked up its targets before the switch began
    # may have left only in the old index.
    check_index(repair=True)
    log.info("Searches now use retriever %s (%s)", name, model)
    return store.current().ntotal


def unstage(name: str) -> None:
    """Stop staging version `name` (its switch was abandoned): writers no
    longer write to its index."""
    with registry().changing() as state:
        if (state.get("staging") or {}).get("name") == name:
            state["staging"] = None


FILL_BATCH = 4096  # passages embedded per write while building a version's index


def _fill(store: IndexStore, embedder, progress=None) -> None:
    """Make `store` hold exactly the searchable chunks: embed the missing ones
    in batches (each batch one write, so other writers interleave), remove the
    extra ones."""
    expected = list(Chunk.objects.filter(SEARCHABLE).order_by("pk").values_list("pk", flat=True))
    if store.manifest() is None:
        with store.write(fresh=True, params=index_params(len(expected))) as snapshot:
            snapshot.bm25.dirty = True
    present = set(store.current().ids().tolist())
    lexical = set(store.current_bm25().ids().tolist())
    missing = [pk for pk in expected if pk not in present or pk not in lexical]
    done, total = len(expected) - len(missing), len(expected)
    if progress:
        progress(done, total)
    for start in range(0, len(missing), FILL_BATCH):
        part = missing[start:start + FILL_BATCH]
        texts = dict(Chunk.objects.filter(pk__in=part).values_list("pk", "text"))
        part = [pk for pk in part if pk in texts]
        dense = [pk for pk in part if pk not in present]
        vectors = embedder.embed_passages([texts[pk] for pk in dense]) if dense else None
        with store.write() as snapshot:
            if dense:
                snapshot.vectors.add(dense, vectors)
            words = [pk for pk in part if pk not in lexical]
            if words:
                snapshot.bm25.add(words, [texts[pk] for pk in words])
        done += len(part)
        if progress:
            progress(done, total)
    extra = (present | lexical) - set(expected)
    if extra:
        with store.write() as snapshot:
            snapshot.vectors.remove(sorted(extra))
            snapshot.bm25.remove(sorted(extra))


# -- reading -------------------------------------------------------------
def search(query: str, *, user=None, k: int | None = None, collections: list[str] | None = None,
           methods: list[str] | None = None, **narrowing) -> list[SearchHit]:
    """Top-k passages for `query` among the documents `user` may read
    (`user=None` is a trusted caller such as the CLI); `narrowing` as in search_many."""
    return search_many([query], user=user, k=k, collections=collections, methods=methods, **narrowing)[0]


def enabled_methods() -> list[str]:
    """The retrievers that settings switch on ("dense", "bm25")."""
    methods = [name for name, on in (("dense", settings.RAG_SEARCH_DENSE), ("bm25", settings.RAG_SEARCH_BM25)) if on]
    if not methods:
        raise ImproperlyConfigured("RAG_SEARCH_DENSE and RAG_SEARCH_BM25 are both off: no retriever to search with.")
    return methods


MAX_OFFSET = 1000


def search_many(queries: list[str], *, user=None, k: int | None = None, collections: list[str] | None = None,
                methods: list[str] | None = None, documents: list[int] | None = None, since=None, until=None,
                offset: int = 0) -> list[list[SearchHit]]:
    """`methods` overrides the settings' choice of retrievers (the evaluation
    compares them); one method alone ranks as that retriever does. `documents`,
    `since` and `until` (dates the documents were added) narrow the search;
    `offset` skips that many hits (pagination: ranks continue from it)."""
    methods = enabled_methods() if methods is None else list(methods)
    if not methods or set(methods) - set(METHODS):
        raise SearchError(f"methods must be a non-empty subset of {', '.join(METHODS)}.")
    k = settings.RAG_SEARCH_DEFAULT_K if k is None else k
    if not 1 <= k <= settings.RAG_SEARCH_MAX_K:
        raise SearchError(f"k must be between 1 and {settings.RAG_SEARCH_MAX_K}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise SearchError(f"offset must be between 0 and {MAX_OFFSET}.")
    if since and until and since > until:
        raise SearchError("since must not be after until.")
    queries = [q.strip() for q in queries]
    if any(not q for q in queries):
        raise SearchError("The query is empty.")
    narrow = Q()  # on documents
    if documents:
        narrow &= Q(pk__in=documents)
    if since:
        narrow &= Q(created__date__gte=since)
    if until:
        narrow &= Q(created__date__lte=until)
    readable = Collection.objects.readable_by(user)
    if collections:
        found = set(readable.filter(name__in=collections).values_list("name", flat=True))
        missing = sorted(set(collections) - found)
        if missing:
            raise SearchError(f"Unknown collection: {', '.join(missing)}.")
        readable = readable.filter(name__in=collections)
    collection_ids = set(readable.values_list("pk", flat=True))
    store = get_store()
    index = store.current()
    # Without vectors there is no score to give a hit (see SearchHit), so no hits.
    if index.ntotal == 0 or not collection_ids:
        return [[] for _ in queries]
    bm25 = store.current_bm25() if "bm25" in methods else None
    # BM25 needs no query vector: its first candidates are found on another
    # thread while the query is embedded (both release the GIL in their
    # inner loops, so the two overlap on two cores).
    lexical = {}
    if bm25 is not None and bm25.ntotal:
        fetch = _ReadableChunks.first_fetch(_depth(k + offset), bm25.ntotal)
        lexical = {query: {fetch: _pool().submit(bm25.search, query, fetch)} for query in queries}
    vectors = get_embedder().embed_queries(queries)
    owners = chunk_owners(store, index)
    return [_search_one(query, vector, k + offset, methods, index, bm25, _ReadableChunks(collection_ids, narrow, owners),
                        lexical.get(query, {}))[offset:]
            for query, vector in zip(queries, vectors)]


def _depth(k: int) -> int:
    """Candidates each retriever contributes to the fusion."""
    return max(3 * k, 30)


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads for work a search runs beside the query embedding (one pool
    per process: a forked worker makes its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="rag-search"))
        return _POOL[1]


def _search_one(query, vector, k, methods, index, bm25, readable, lexical_started=None) -> list[SearchHit]:
    depth = _depth(k)
    rankings, dense, lexical = {}, {}, {}
    searches = {}
    if "dense" in methods:
        searches["dense"] = (_remembered(lambda n: index.search(vector, n)), index.ntotal)
    if "bm25" in methods and bm25 is not None and bm25.ntotal:
        searches["bm25"] = (_remembered(lambda n: bm25.search(query, n), lexical_started), bm25.ntotal)
    # Both retrievers' first candidates go through the access filter in one query.
    readable.check_first(searches.values(), depth)
    if "dense" in searches:
        dense = dict(readable.top(*searches["dense"], depth))
        rankings["dense"] = list(dense)
    if "bm25" in searches:
        lexical = dict(readable.top(*searches["bm25"], depth))
        rankings["bm25"] = list(lexical)
    fused = reciprocal_rank_fusion(rankings, settings.RAG_RRF_K)
    # A chunk no dense search ranked gets its cosine from its stored vector.
    cosine = {pk: dense[pk] for pk in fused if pk in dense}
    for pk, stored in index.vectors([pk for pk in fused if pk not in dense]).items():
        cosine[pk] = float(np.dot(stored, vector))
    order = sorted((pk for pk in fused if pk in cosine), key=lambda pk: (-fused[pk], -cosine[pk], pk))[:k]
    hits = []
    rows = readable.rows(order)
    for rank, pk in enumerate((pk for pk in order if pk in rows), start=1):  # a chunk deleted meanwhile is skipped
        chunk = rows[pk]
        hits.append(SearchHit(
            rank=rank,
            score=round(cosine[pk], 6),
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
            scores={
                "dense": round(cosine[pk], 6),
                "bm25": round(lexical[pk], 6) if pk in lexical else None,
                "rrf": round(fused[pk], 6),
            },
        ))
    return hits


def _remembered(search, started=None):
    """search(n), each n computed once (the access filter asks twice);
    `started`: {n: a Future of search(n)} already under way."""
    results, started = {}, dict(started or {})

    def run(n):
        if n not in results:
            results[n] = started.pop(n).result() if n in started else search(n)
        return results[n]

    return run


class ChunkOwners:
    """chunk id -> document id of every chunk in an index, in memory (16 bytes
    a chunk), so that the access filter asks the database about the few
    documents of a search's candidates and never about each candidate chunk.

    A chunk never moves to another document and primary keys are not reused
    (PostgreSQL sequences; SQLite AUTOINCREMENT), so a pair once read stays
    true: the map only grows, by the chunks above the highest id it holds,
    read when the index has a new version (a chunk is indexed after its row
    is committed). A chunk deleted since is harmless: its document check, or
    the final row load, drops it. An id the map lacks (indexed after the
    last read) is looked up in the database. One map per index store, so a
    store made anew (another data folder) starts from nothing."""

    READ_BATCH = 50_000

    def __init__(self):
        self._pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64))  # ids ascending, their documents
        self._index = None  # the index version read up to (weakly: versions come and go)
        self._lock = threading.Lock()

    def refresh(self, index) -> None:
        if self._index is not None and self._index() is index:
            return
        with self._lock:
            if self._index is not None and self._index() is index:
                return
            ids, documents = self._pairs
            high = int(ids[-1]) if len(ids) else 0
            new_ids, new_documents = array("q"), array("q")
            while True:  # in batches by primary key: memory stays flat at a million rows
                batch = list(Chunk.objects.filter(pk__gt=high).order_by("pk").values_list("pk", "document_id")[:self.READ_BATCH])
                for pk, document in batch:
                    new_ids.append(pk)
                    new_documents.append(document)
                if len(batch) < self.READ_BATCH:
                    break
                high = batch[-1][0]
            if new_ids:
                self._pairs = (np.concatenate([ids, np.frombuffer(new_ids, dtype=np.int64)]),
                               np.concatenate([documents, np.frombuffer(new_documents, dtype=np.int64)]))
            self._index = weakref.ref(index)

    def lookup(self, chunk_ids) -> tuple[list[tuple[int, int]], list[int]]:
        """([(chunk id, document id)] of the ids the map holds, [ids it does not])."""
        ids, documents = self._pairs
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
        held = ids[at] == wanted if len(ids) else np.zeros(len(wanted), dtype=bool)
        return (list(zip(wanted[held].tolist(), documents[at[held]].tolist())), wanted[~held].tolist())


_OWNERS: "weakref.WeakKeyDictionary[IndexStore, ChunkOwners]" = weakref.WeakKeyDictionary()
_OWNERS_LOCK = threading.Lock()


def chunk_owners(store: IndexStore, index) -> ChunkOwners:
    """The store's ChunkOwners, read up to `index` (its current version)."""
    with _OWNERS_LOCK:
        owners = _OWNERS.get(store)
        if owners is None:
            owners = _OWNERS[store] = ChunkOwners()
    owners.refresh(index)
    return owners


class _ReadableChunks:
    """The access filter, the same for every retriever: chunks of searchable
    documents in the collections the user may read. Remembers what it looked up."""

    def __init__(self, collection_ids, narrow=Q(), owners: ChunkOwners | None = None):
        self.collection_ids = collection_ids
        self.narrow = narrow
        self.owners = owners
        self.allowed: set[int] = set()
        self.checked: set[int] = set()
        self.allowed_documents: set[int] = set()
        self.checked_documents: set[int] = set()

    @staticmethod
    def first_fetch(want: int, ntotal: int) -> int:
        return min(ntotal, max(2 * want, 32))  # widened by top() when the filter leaves too few

    def check_first(self, searches, want: int) -> None:
        """Check the first candidates of several searches (search, ntotal) at once."""
        ids = []
        for search, ntotal in searches:
            ids.extend(int(i) for i in np.ravel(search(self.first_fetch(want, ntotal))[1]) if i >= 0)
        self._check(ids)

    def top(self, search, ntotal: int, want: int) -> list[tuple[int, float]]:
        """The best `want` readable (id, score) pairs of `search(n)`, which
        returns (scores, ids) best first; asks for more until enough are found."""
        fetch = self.first_fetch(want, ntotal)
        while True:
            scores, ids = search(fetch)
            scores, ids = np.ravel(scores), np.ravel(ids)
            pairs = [(int(i), float(s)) for i, s in zip(ids, scores) if i >= 0]
            self._check([i for i, _ in pairs])
            hits = [(i, s) for i, s in pairs if i in self.allowed][:want]
            if len(hits) >= want or len(pairs) < fetch or fetch >= ntotal:
                return hits
            fetch = min(ntotal, fetch * 4)

    def _check(self, ids) -> None:
        # chunk -> document from the owner map (the database for chunks it
        # lacks), then one indexed lookup of the few documents against the
        # collections and filters (a join over chunks was planned by SQLite
        # as a scan of every chunk of the readable collections: 220 ms at a
        # million chunks). Only primary keys here: rows are loaded for the
        # final hits alone.
        new = [i for i in dict.fromkeys(ids) if i not in self.checked]
        if not new:
            return
        self.checked.update(new)
        owners, missing = self.owners.lookup(new) if self.owners is not None else ([], new)
        if missing:
            owners += list(Chunk.objects.filter(pk__in=missing).order_by().values_list("pk", "document_id"))
        unknown = {document for _, document in owners} - self.checked_documents
        if unknown:
            self.checked_documents |= unknown
            self.allowed_documents.update(
                Document.objects.filter(pk__in=unknown, collection_id__in=self.collection_ids)
                .filter(SEARCHABLE_DOCUMENTS).filter(self.narrow).order_by().values_list("pk", flat=True)
            )
        self.allowed.update(pk for pk, document in owners if document in self.allowed_documents)

    def rows(self, ids) -> dict:
        """The chunks (with document and collection) of these allowed ids.
        Each row's own document is checked again: whatever the owner map
        says, nothing of a document the user may not read leaves here."""
        found = Chunk.objects.select_related("document", "document__collection").order_by().in_bulk(
            [i for i in ids if i in self.allowed])
        return {pk: chunk for pk, chunk in found.items() if chunk.document_id in self.allowed_documents}


# -- evaluation ------------------------------------------------------------
EVALUATED = {"dense": ["dense"], "bm25": ["bm25"], "hybrid": ["dense", "bm25"]}


def evaluate_retrieval(labelled, k: int, collections: list[str] | None = None) -> dict:
    """Run labelled queries (retrieval.evaluation.LabelledQuery) through each
    retriever alone and fused, whatever the settings switch on, and score the
    top-k passages. Returns {"k", "queries", "summary": {method: Metrics},
    "per_query": [...]}."""
    from retrieval import evaluation

    texts = [item.query for item in labelled]
    summary, per_query = {}, [{"query": item.query, "unit": item.unit, "relevant": sorted(item.relevant)} for item in labelled]
    for name, methods in EVALUATED.items():
        results = search_many(texts, k=k, collections=collections, methods=methods)
        scored = []
        for item, hits, row in zip(labelled, results, per_query):
            retrieved = evaluation.first_occurrences(h.chunk_id if item.unit == "chunk" else h.document_id for h in hits)
            metrics = evaluation.score_query(retrieved, item.relevant, k)
            scored.append(metrics)
            row[name] = {"retrieved": retrieved, **metrics.as_dict()}
        summary[name] = evaluation.mean(scored)
    return {"k": k, "queries": len(labelled), "summary": summary, "per_query": per_query}


def passage_vectors(chunk_ids: list[int]):
    """The indexed vectors of these chunks, in order (so an answer's attribution
    need not embed its passages again); None when any is missing."""
    import numpy as np

    found = get_store().current().vectors(chunk_ids)
    if len(found) != len(chunk_ids):
        return None
    return np.vstack([found[pk] for pk in chunk_ids]) if chunk_ids else None


def check_index(repair: bool = False) -> dict:
    """Compare the indexes with the database: vectors (and BM25 entries) the
    searchable chunks lack, and ones no such chunk owns. With `repair`, embed
    what is missing and remove what is extra (in batches, each under the one
    writer lock)."""
    store = get_store()
    expected = set(Chunk.objects.filter(SEARCHABLE).values_list("pk", flat=True))
    vectors = set(store.current().ids().tolist())
    lexical = set(store.current_bm25().ids().tolist())
    report = {
        "chunks": len(expected),
        "vectors": len(vectors),
        "bm25": len(lexical),
        "missing_vectors": sorted(expected - vectors),
        "extra_vectors": sorted(vectors - expected),
        "missing_bm25": sorted(expected - lexical),
        "extra_bm25": sorted(lexical - expected),
        "repaired": False,
    }
    problems = any(report[key] for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"))
    if repair and problems:
        _fill(store, get_embedder(store.model))
        report["repaired"] = True
    return report
