"""The reranker's part of a fine-tuning run (pipeline.py calls it): train the
cross-encoder on the run's triplets, judge it on the held-out queries, and
write its verdict where search finds it (retrieval/reranker.py).

Judged by re-ordering the new model's hybrid top for every held-out query,
as deep as the latency budget allows (below): the methods
"hybrid-finetuned+rerank" (and by source) join the run's evaluation, and the
reranker is used only when its MRR@10 beats the hybrid order's by
RAG_RERANK_MIN_GAIN without losing recall@5 (on the real held-out queries
when there are enough: report.deciding_methods). Its cost
per query is measured on the way: scoring RAG_RERANK_DEPTH passages, and,
when that is over RAG_RERANK_BUDGET_MS, as many as fit (search then
re-orders only those; none when fewer than three fit, and it is not used).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from django.conf import settings

from retrieval import passage_forms
from retrieval.finetune import cross_encoder, report
from retrieval.finetune import evaluate as evaluation
from retrieval.reranker import FOLDER, CrossEncoderReranker

HYBRID = "hybrid-finetuned"
RERANKED = "hybrid-finetuned+rerank"
COST_SAMPLE = 30  # queries timed again at a shallower depth


def train_reranker(options, prepared, folder: Path, *, max_minutes: float, progress=None) -> dict:
    path = folder / FOLDER
    trained = cross_encoder.train(
        options.base_model,
        prepared.triplet_texts(passage_forms.CONTEXTUAL),  # the reranker reads passages in context, whatever the index
        path,
        max_steps=options.max_steps,
        max_minutes=max_minutes,
        batch_size=max(2, options.batch_size // 2),  # each query is read with several passages
        seed=options.seed,
        layers=options.rerank_layers,
        progress=progress,
    )
    return {"path": str(path), "layers": options.rerank_layers, "training": trained.as_dict()}


def evaluate_reranker(path: str, prepared, result: dict, documents: dict, progress=None) -> dict:
    """Re-order the held-out hybrid rankings with the reranker, as deep as
    RAG_RERANK_BUDGET_MS allows; add its methods to `result`; write and
    return its verdict."""
    texts = prepared.eval_texts(passage_forms.CONTEXTUAL)
    model = CrossEncoderReranker(path, settings.RAG_EMBEDDER_DEVICE, settings.RAG_EMBED_BATCH_SIZE)
    model.warm_up()
    queries = prepared.eval_queries
    asked, rankings, deepest = [q.query for q in queries], result["rankings"][HYBRID], settings.RAG_RERANK_DEPTH
    scores, seconds = cross_encoder.rerank(model.score, asked, rankings, texts, deepest, progress)
    cost = _p50_ms(seconds)
    depth = cross_encoder.within_budget(cost, deepest, settings.RAG_RERANK_BUDGET_MS)
    reordered = [cross_encoder.reorder(r, s, depth or deepest) for r, s in zip(rankings, scores)]
    result["rankings"][RERANKED] = [r[: evaluation.K] for r in reordered]
    result["methods"][RERANKED] = evaluation.score(reordered, queries, documents)
    for source, row in result["by_source"].items():
        picked = [i for i, q in enumerate(queries) if q.source == source]
        row[RERANKED] = evaluation.score([reordered[i] for i in picked], [queries[i] for i in picked], documents)
    judged, basis = report.deciding_methods(result, queries, documents, settings.RAG_FINETUNE_MIN_REAL_QUERIES)
    decision = {**cross_encoder.decide(judged, HYBRID, RERANKED, settings.RAG_RERANK_MIN_GAIN), "basis": basis}
    if 0 < depth < deepest:  # what scoring only that many costs, measured again on a sample
        cost = _p50_ms(cross_encoder.rerank(model.score, asked[:COST_SAMPLE], rankings, texts, depth)[1])
    verdict = {
        **decision,
        "use": decision["use"] and depth > 0,
        "depth": depth or deepest,
        "depth_asked": deepest,
        "budget_ms": settings.RAG_RERANK_BUDGET_MS,
        "over_budget": depth == 0,
        "queries": len(queries),
        "cost_ms_p50": cost,
        "cost_ms_p50_all": _p50_ms(seconds),  # scoring RAG_RERANK_DEPTH
        "methods": {HYBRID: judged[HYBRID], RERANKED: judged[RERANKED]},
    }
    (Path(path) / cross_encoder.DECISION_FILE).write_text(json.dumps(verdict, indent=1))
    return {"decision": verdict}


def _p50_ms(seconds: list[float]) -> float | None:
    return round(1000 * statistics.median(seconds), 2) if seconds else None
