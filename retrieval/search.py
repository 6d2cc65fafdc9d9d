"""Search: the enabled retrievers' candidates for a query, kept to what the
user may read (retrieval/access.py), fused and ordered by the ranking rule
(retrieval/ranking.py), each hit scored by its cosine with the query.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

from ingestion.models import Collection
from retrieval import evaluation, ranking
from retrieval.access import ReadableChunks, chunk_owners
from retrieval.embedding import get_embedder
from retrieval.finetune.cross_encoder import reorder
from retrieval.passage_forms import passage_text
from retrieval.reranker import get_reranker
from retrieval.stores import get_store

METHODS = ("dense", "bm25")


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
    did not rank the passage, "rrf": the fused reciprocal-rank score}.
    Callers other than trusted ones (the CLI) get `for_caller()`: BM25 and the
    fused score depend on statistics of the whole corpus, every collection
    included, so they would tell a user about documents they cannot read."""

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

    def for_caller(self) -> dict:
        """as_dict() with only the scores that depend on nothing but the query
        and the passage (CALLER_SCORES)."""
        data = self.as_dict()
        data["scores"] = {name: value for name, value in self.scores.items() if name in CALLER_SCORES}
        return data


def search_documents(query: str, *, k: int | None = None, per_document: int = 2, **kwargs) -> list[dict]:
    """The best passage of each of the top-k documents for `query`, ranked by
    document, each with up to `per_document` more of its passages ("passages")
    : a caller who wants documents gets k different ones instead of k passages
    of the first. Candidates are the top RAG_SEARCH_MAX_K passages; `kwargs`
    as in search() (no offset: pages are of passages)."""
    k = settings.RAG_SEARCH_DEFAULT_K if k is None else k
    if not 1 <= k <= settings.RAG_SEARCH_MAX_K:
        raise SearchError(f"k must be between 1 and {settings.RAG_SEARCH_MAX_K}.")
    if kwargs.get("offset"):
        raise SearchError("offset pages through passages; it does not apply to results by document.")
    hits = search(query, k=settings.RAG_SEARCH_MAX_K, **kwargs)
    return [
        {**best.for_caller(), "rank": rank, "passages": [hit.for_caller() for hit in more]}
        for rank, (best, more) in enumerate(ranking.by_document(hits, k, per_document), start=1)
    ]


# The scores a user may see: the cosine of query and passage, and the
# reranker's score of the two (when a reranker ordered them). Not "bm25" nor
# "rrf" (corpus-wide statistics: see SearchHit and docs/ARCHITECTURE.md).
CALLER_SCORES = frozenset({"dense", "rerank"})


def search(
    query: str,
    *,
    user=None,
    k: int | None = None,
    collections: list[str] | None = None,
    methods: list[str] | None = None,
    **narrowing,
) -> list[SearchHit]:
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


def search_many(
    queries: list[str],
    *,
    user=None,
    k: int | None = None,
    collections: list[str] | None = None,
    methods: list[str] | None = None,
    documents: list[int] | None = None,
    since=None,
    until=None,
    offset: int = 0,
    rerank: bool | None = None,
) -> list[list[SearchHit]]:
    """`methods` overrides the settings' choice of retrievers (the evaluation
    compares them); one method alone ranks as that retriever does. The
    serving version's reranker (retrieval/reranker.py), when it has one that
    earned its place, re-orders the first hits (RAG_RERANK_DEPTH, fewer when
    its latency budget allowed fewer); `rerank=False`
    keeps the fused order (True: a reranker the run found no better is used
    too). `documents`,
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
    reranker = get_reranker(force=bool(rerank)) if rerank is not False else None
    wanted = max(k + offset, reranker.depth) if reranker is not None else k + offset
    # BM25 needs no query vector: its first candidates are found on another
    # thread while the query is embedded (both release the GIL in their
    # inner loops, so the two overlap on two cores).
    # A store that filters inside the engine (Milvus) is given the readable
    # collections (and the narrowing documents) with every search, so access
    # never cuts its top k short; the access filter below checks the rest.
    scope = (
        {"collections": sorted(collection_ids), "documents": sorted(documents) if documents else None}
        if getattr(index, "filters_inside", False)
        else {}
    )
    lexical = {}
    if bm25 is not None and bm25.ntotal:
        fetch = ReadableChunks.first_fetch(ranking.depth(wanted), bm25.ntotal)
        lexical = {query: {fetch: _pool().submit(bm25.search, query, fetch, **scope)} for query in queries}
    vectors = get_embedder().embed_queries(queries)
    owners = chunk_owners(store, index)
    return [
        _search_one(
            query,
            vector,
            k + offset,
            methods,
            index,
            bm25,
            ReadableChunks(collection_ids, narrow, owners),
            lexical.get(query, {}),
            reranker,
            scope,
        )[offset:]
        for query, vector in zip(queries, vectors)
    ]


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


def _search_one(query, vector, k, methods, index, bm25, readable, lexical_started=None, reranker=None, scope=None):
    wanted = max(k, reranker.depth) if reranker is not None else k
    depth = ranking.depth(wanted)
    scope = scope or {}
    rankings, dense, lexical = {}, {}, {}
    searches = {}
    if "dense" in methods:
        searches["dense"] = (_remembered(lambda n: index.search(vector, n, **scope)), index.ntotal)
    if "bm25" in methods and bm25 is not None and bm25.ntotal:
        searches["bm25"] = (_remembered(lambda n: bm25.search(query, n, **scope), lexical_started), bm25.ntotal)
    # Both retrievers' first candidates go through the access filter in one query.
    readable.check_first(searches.values(), depth)
    if "dense" in searches:
        dense = dict(readable.top(*searches["dense"], depth))
        rankings["dense"] = list(dense)
    if "bm25" in searches:
        lexical = dict(readable.top(*searches["bm25"], depth))
        rankings["bm25"] = list(lexical)
    # A chunk no dense search ranked gets its cosine from its stored vector.
    cosine = dict(dense)
    for pk, stored in index.vectors([pk for pk in lexical if pk not in dense]).items():
        cosine[pk] = float(np.dot(stored, vector))
    order, fused = ranking.fused_order(rankings, cosine, settings.RAG_RRF_K, wanted)
    rows = readable.rows(order)
    order = [pk for pk in order if pk in rows]  # a chunk deleted meanwhile is skipped
    reranked = {}
    if reranker is not None:
        order, reranked = _reranked(reranker, query, order, rows)
    hits = []
    for rank, pk in enumerate(order[:k], start=1):
        chunk = rows[pk]
        hits.append(
            SearchHit(
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
                    **({"rerank": round(reranked[pk], 6)} if pk in reranked else {}),
                },
            )
        )
    return hits


def _reranked(reranker, query, order, rows) -> tuple[list[int], dict[int, float]]:
    """The reranker's first `depth` of `order` re-ordered by it (ties keep
    the fused order), the rest after them; and their scores."""
    head = order[: reranker.depth]
    texts = [passage_text(rows[pk].text, rows[pk].document.title, rows[pk].heading) for pk in head]
    scores = reranker.score(query, texts)
    return reorder(order, scores, len(head)), {pk: float(value) for pk, value in zip(head, scores)}


def _remembered(search, started=None):
    """search(n), each n computed once (the access filter asks twice);
    `started`: {n: a Future of search(n)} already under way."""
    results, started = {}, dict(started or {})

    def run(n):
        if n not in results:
            results[n] = started.pop(n).result() if n in started else search(n)
        return results[n]

    return run


# -- evaluation ------------------------------------------------------------
EVALUATED = {"dense": ["dense"], "bm25": ["bm25"], "hybrid": ["dense", "bm25"]}
RERANKED = "hybrid+rerank"  # evaluated where the serving version has a reranker


def evaluate_retrieval(labelled, k: int, collections: list[str] | None = None) -> dict:
    """Run labelled queries (retrieval.evaluation.LabelledQuery) through each
    retriever alone and fused, whatever the settings switch on, and, where
    the serving retriever version has a reranker (used or not), the fused
    order reranked; score the top-k passages. Returns {"k", "queries",
    "summary": {method: Metrics}, "per_query": [...]}."""
    texts = [item.query for item in labelled]
    summary, per_query = (
        {},
        [{"query": item.query, "unit": item.unit, "relevant": sorted(item.relevant)} for item in labelled],
    )
    runs = {name: (methods, False) for name, methods in EVALUATED.items()}
    if get_reranker(force=True) is not None:
        runs[RERANKED] = (EVALUATED["hybrid"], True)
    for name, (methods, rerank) in runs.items():
        results = search_many(texts, k=k, collections=collections, methods=methods, rerank=rerank)
        scored = []
        for item, hits, row in zip(labelled, results, per_query):
            retrieved = evaluation.first_occurrences(
                h.chunk_id if item.unit == "chunk" else h.document_id for h in hits
            )
            metrics = evaluation.score_query(retrieved, item.relevant, k)
            scored.append(metrics)
            row[name] = {"retrieved": retrieved, **metrics.as_dict()}
        summary[name] = evaluation.mean(scored)
    return {"k": k, "queries": len(labelled), "summary": summary, "per_query": per_query}
