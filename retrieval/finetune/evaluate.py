"""Held-out evaluation: each model's dense retrieval, BM25 and their fusion,
over the held-out documents' passages only. Pure: no Django.

Indexes are built in memory for the run: an exact dense index (normalised
vectors, inner product = cosine, searched with numpy) per model, and one
BM25Index (retrieval/bm25_index.py, the one search uses). Hybrid fuses a
model's dense ranking with BM25's by the ranking rule search uses
(retrieval/ranking.py: its depth, fusion and tie-breaks), so a model is
judged by the order users would see. Every number comes from these rankings,
scored by retrieval/evaluation.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval import evaluation, ranking
from retrieval.bm25_index import BM25Index

K = 10
CUTOFFS = (1, 5, 10)
METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")


@dataclass(frozen=True)
class EvalQuery:
    query: str
    relevant: frozenset[int]  # chunk ids, or document ids when unit is "document"
    source: str  # "llm", "ict", or "labelled"
    unit: str = "chunk"


def search_depth(k: int = K) -> int:
    """Candidates each retriever gives the fusion (the ranking rule's depth)."""
    return ranking.depth(k)


def dense_rankings(query_vectors: np.ndarray, passage_vectors: np.ndarray, ids: np.ndarray, depth: int):
    """Per query: the ids of the `depth` passages of highest cosine (ties by id),
    and the full row of cosines (for tie-breaking in the fusion)."""
    scores = query_vectors @ passage_vectors.T
    depth = min(depth, len(ids))
    rankings = []
    for row in scores:
        top = np.argpartition(-row, depth - 1)[:depth] if depth < len(ids) else np.arange(len(ids))
        rankings.append([int(ids[i]) for i in top[np.lexsort((ids[top], -row[top]))]])
    return rankings, scores


def bm25_rankings(index: BM25Index, queries: Sequence[str], depth: int) -> list[list[int]]:
    return [[int(i) for i in index.search(q, depth)[1]] for q in queries]


def hybrid_rankings(
    dense: list[list[int]], lexical: list[list[int]], cosines: np.ndarray, ids: np.ndarray, rrf_k: int, k: int = K
) -> list[list[int]]:
    column = {int(pk): i for i, pk in enumerate(ids.tolist())}
    fused_lists = []
    for row, (d, b) in enumerate(zip(dense, lexical)):
        cosine = {pk: float(cosines[row, column[pk]]) for pk in (*d, *b)}
        fused_lists.append(ranking.fused_order({"dense": d, "bm25": b}, cosine, rrf_k, k)[0])
    return fused_lists


def score(
    rankings: Sequence[Sequence[int]], queries: Sequence[EvalQuery], documents: Mapping[int, int] | None = None
) -> dict[str, float]:
    """Mean recall@1/5/10, MRR@10 and nDCG@10 of ranked chunk ids against the
    queries' relevant ids. A query labelled with documents scores the ranked
    chunks' documents, each at the rank of its first chunk (`documents`: chunk
    id -> document id), as retrieval.search.evaluate_retrieval does."""
    if not queries:
        return {name: 0.0 for name in METRICS}
    totals = dict.fromkeys(METRICS, 0.0)
    for ranked, query in zip(rankings, queries):
        if query.unit == "document":
            ranked = [documents[pk] for pk in ranked]
        ranked = evaluation.first_occurrences(ranked)
        for cutoff in CUTOFFS:
            totals[f"recall@{cutoff}"] += evaluation.recall_at_k(ranked, query.relevant, cutoff)
        totals["mrr"] += evaluation.reciprocal_rank(ranked, query.relevant, K)
        totals["ndcg@10"] += evaluation.ndcg_at_k(ranked, query.relevant, K)
    return {name: round(value / len(queries), 6) for name, value in totals.items()}


def evaluate(
    queries: Sequence[EvalQuery],
    passages: Mapping[int, str],
    embedders: Mapping[str, object],
    *,
    documents: Mapping[int, int] | None = None,
    rrf_k: int = 60,
    progress=None,
    keep: int = K,
) -> dict:
    """Rank `passages` ({chunk id: text}) for every query with each embedder's
    dense index ("<name>-dense"), BM25 ("bm25") and each fusion
    ("hybrid-<name>"). An embedder has embed_queries/embed_passages returning
    normalised vectors; `documents` maps chunk ids to document ids (needed
    for queries labelled with documents). Returns {"queries", "passages", "methods": {method:
    metrics}, "by_source": {source: {method: metrics}}, "rankings": {method:
    [top ids per query]}}: the top 10, the hybrids' top `keep` when more (a
    reranker re-orders them)."""
    ids = np.array(sorted(passages), dtype=np.int64)
    texts = [passages[int(pk)] for pk in ids]
    query_texts = [q.query for q in queries]
    depth = search_depth(max(K, keep))
    steps = 1 + len(embedders)
    bm25 = BM25Index()
    bm25.add(ids.tolist(), texts)
    lexical = bm25_rankings(bm25, query_texts, depth)
    rankings = {"bm25": [r[:K] for r in lexical]}
    if progress:
        progress(1, steps)
    for done, (name, embedder) in enumerate(embedders.items(), start=2):
        passage_vectors = embedder.embed_passages(texts)
        query_vectors = embedder.embed_queries(query_texts)
        dense, cosines = dense_rankings(query_vectors, passage_vectors, ids, depth)
        rankings[f"{name}-dense"] = [r[:K] for r in dense]
        rankings[f"hybrid-{name}"] = hybrid_rankings(dense, lexical, cosines, ids, rrf_k, max(K, keep))
        if progress:
            progress(done, steps)
    order = [f"{name}-dense" for name in embedders] + ["bm25"] + [f"hybrid-{name}" for name in embedders]
    methods = {method: score(rankings[method], queries, documents) for method in order}
    by_source = {}
    for source in sorted({q.source for q in queries}):
        rows = [i for i, q in enumerate(queries) if q.source == source]
        chosen = [queries[i] for i in rows]
        by_source[source] = {
            "queries": len(rows),
            **{method: score([rankings[method][i] for i in rows], chosen, documents) for method in order},
        }
    return {
        "queries": len(queries),
        "passages": len(ids),
        "methods": methods,
        "by_source": by_source,
        "rankings": {method: rankings[method] for method in order},
    }


def format_table(methods: Mapping[str, Mapping[str, float]]) -> str:
    """A Markdown table: one row per method, one column per metric."""
    lines = ["| method | " + " | ".join(METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for name, metrics in methods.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[m]:.3f}" for m in METRICS) + " |")
    return "\n".join(lines)
