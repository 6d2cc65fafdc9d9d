"""A fine-tuning run's verdict and report: whether the new model switches in,
report.json and report.md beside the model. Pure: no Django."""

from __future__ import annotations

import datetime
import math
from collections import Counter

from retrieval.finetune import evaluate as evaluation

STAGES = (
    "corpus",
    "llm_queries",
    "ict_queries",
    "negatives",
    "train",
    "rerank_train",
    "evaluate",
    "rerank_evaluate",
    "report",
    "switch",
)
RERANKED = "hybrid-finetuned+rerank"


REAL_SOURCES = ("labelled", "feedback")  # held-out queries no model wrote: --labelled, and askers' feedback


def deciding_methods(result: dict, queries, documents, min_real: int) -> tuple[dict, str]:
    """The metrics a run's decisions rest on, and which queries gave them:
    the real held-out queries (labelled ones and askers' feedback) when there
    are at least `min_real` of them (a gain on synthetic queries need not
    carry over to what users ask), else all held-out queries. Scored from
    the run's rankings (`result["rankings"]`)."""
    real = [i for i, q in enumerate(queries) if q.source in REAL_SOURCES]
    if len(real) < max(1, min_real):
        return result["methods"], f"all held-out ({result['queries']} queries)"
    chosen = [queries[i] for i in real]
    methods = {
        method: evaluation.score([ranked[i] for i in real], chosen, documents)
        for method, ranked in result["rankings"].items()
    }
    return methods, f"real ({len(real)} labelled and feedback queries)"


def decide(
    methods: dict, serving_method: str, serving_name: str, min_gain: float, reranker: dict | None = None
) -> dict:
    """Is the new model's held-out dense recall@10 at least `min_gain`
    (relative) above the serving model's? Or, when the run's reranker earned
    its place (`reranker`: its verdict), is the new version's reranked hybrid
    MRR@10 that much above the serving hybrid's, without losing recall@10?"""
    new = methods["finetuned-dense"]["recall@10"]
    old = methods[f"{serving_method}-dense"]["recall@10"]
    gain = (new - old) / old if old > 0 else (math.inf if new > 0 else 0.0)
    gain_over_bm25 = (
        (new - methods["bm25"]["recall@10"]) / methods["bm25"]["recall@10"] if methods["bm25"]["recall@10"] else None
    )
    decision = {
        "metric": "recall@10",
        "serving": serving_name,
        "serving_recall": old,
        "finetuned_recall": new,
        "gain": None if math.isinf(gain) else round(gain, 6),
        "min_gain": min_gain,
        "better": bool(new > old and gain >= min_gain),
        "gain_over_bm25": None if gain_over_bm25 is None else round(gain_over_bm25, 6),
        "reranker": bool(reranker and reranker.get("use")),
        "better_by": "embedder" if new > old and gain >= min_gain else None,
    }
    if decision["reranker"] and not decision["better"]:
        served, reranked = methods[f"hybrid-{serving_method}"], methods[RERANKED]
        mrr_gain = (reranked["mrr"] - served["mrr"]) / served["mrr"] if served["mrr"] > 0 else 0.0
        decision["reranked_mrr_gain"] = round(mrr_gain, 6)
        if mrr_gain >= min_gain and reranked["mrr"] > served["mrr"] and reranked["recall@10"] >= served["recall@10"]:
            decision["better"], decision["better_by"] = True, "reranker"
    return decision


def build(version, options, prepared, trained, result, decision, durations, serving, reranker=None) -> dict:
    """report.json of a run: `version` is its row (name, path), `prepared`
    steps 1-3 (pipeline.Prepared), `trained` the training summary, `result`
    the held-out evaluation, `decision` decide()'s verdict."""
    heldout_by_source = Counter(q.source for q in prepared.eval_queries)
    return {
        "version": version.name,
        "model": version.path,
        "base_model": options.base_model,
        "serving_before": serving,
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "options": options.as_dict(),
        "corpus": {
            "train_documents": len(prepared.split.train),
            "heldout_documents": len(prepared.split.heldout),
            "train_chunks": len(prepared.train_passages),
            "heldout_chunks": len(prepared.heldout_passages),
            "heldout_document_ids": list(prepared.split.heldout),
        },
        "pairs_by_method": prepared.pairs_by_method,
        "triplets": len(prepared.triplets),
        "heldout_queries_by_source": dict(sorted(heldout_by_source.items())),
        "llm_filter": prepared.llm_filter,
        "mining": prepared.mining,
        "training": trained.as_dict(),
        "evaluation": {
            "queries": result["queries"],
            "passages": result["passages"],
            "methods": result["methods"],
            "by_source": result["by_source"],
        },
        "decision": decision,
        "reranker": reranker,
        "durations": {stage: durations[stage] for stage in STAGES if stage in durations},
        "per_query": [
            {
                "query": q.query,
                "source": q.source,
                "unit": q.unit,
                "relevant": sorted(q.relevant),
                **{method: ranking[i] for method, ranking in result["rankings"].items()},
            }
            for i, q in enumerate(prepared.eval_queries)
        ],
    }


def render_markdown(report: dict) -> str:
    """report.md: the report for a person."""
    corpus, training, decision = report["corpus"], report["training"], report["decision"]
    lines = [
        f"# Retriever {report['version']}",
        "",
        f"Base model `{report['base_model']}`; serving before this run: {report['serving_before']['name']}.",
        "",
        f"Documents: {corpus['train_documents']} train, {corpus['heldout_documents']} held out; "
        f"passages: {corpus['train_chunks']} train, {corpus['heldout_chunks']} held out.",
        f"Training pairs by method: {_counts(report['pairs_by_method'])}; with a hard negative: {report['triplets']}.",
        f"Held-out queries: {report['evaluation']['queries']} ({_counts(report['heldout_queries_by_source'])}) "
        f"over {report['evaluation']['passages']} held-out passages.",
        f"Training: {training['steps']} of {training['max_steps']} steps in {training['seconds']:.0f} s on "
        f"{training['device']} (stopped by {training['stopped_by']}), mean loss {training['loss'] or 0:.4f}.",
        "",
        "## Held-out retrieval",
        "",
        evaluation.format_table(report["evaluation"]["methods"]),
        "",
    ]
    for source, methods in report["evaluation"]["by_source"].items():
        lines += [
            f"### {source} queries ({methods['queries']})",
            "",
            evaluation.format_table({k: v for k, v in methods.items() if k != "queries"}),
            "",
        ]
    gain = "n/a" if decision["gain"] is None else f"{decision['gain']:+.1%}"
    lines += [
        "## Decision",
        "",
        f"recall@10 {decision['finetuned_recall']:.3f} against {decision['serving_recall']:.3f} for the serving "
        f"model ({decision['serving']}): {gain}, needed {decision['min_gain']:+.1%}. "
        + f"Judged on {decision.get('basis', 'all held-out queries')}. "
        + (
            "Better with its reranker: switch in."
            if decision.get("better_by") == "reranker"
            else "Better: switch in."
            if decision["better"]
            else "Not better: kept the serving model."
        ),
        "",
    ]
    if report.get("reranker"):
        lines += _reranker_lines(report["reranker"])
    lines += [
        "## LLM questions",
        "",
    ]
    for side, stats in report["llm_filter"].items():
        lines.append(
            f"- {side}: asked {stats['asked']}, kept {stats['kept']}, dropped {_counts(stats['dropped']) or 'none'}"
        )
    lines += ["", "## Time per stage (s)", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in report["durations"].items()]
    return "\n".join(lines) + "\n"


def _reranker_lines(reranker: dict) -> list[str]:
    training, verdict = reranker["training"], reranker.get("decision") or {}
    lines = [
        "## Reranker",
        "",
        f"A cross-encoder from the base model's encoder: {training['steps']} of {training['max_steps']} steps in "
        f"{training['seconds']:.0f} s on {training['device']} (stopped by {training['stopped_by']}), "
        f"mean loss {training['loss'] or 0:.4f}.",
    ]
    if verdict:
        lines.append(
            f"Re-ordering the hybrid top {verdict['depth']}: MRR@10 {verdict['reranked_mrr']:.3f} against "
            f"{verdict['hybrid_mrr']:.3f} ({verdict['gain']:+.1%}, needed {verdict['min_gain']:+.1%}); "
            f"{verdict['cost_ms_p50']} ms a query (p50{_budget(verdict)}). "
            + (
                "Used by search and evidence selection."
                if verdict["use"]
                else "Not used: too slow for the latency budget."
                if verdict.get("over_budget")
                else "Not used: no better."
            )
        )
    return lines + [""]


def _budget(verdict: dict) -> str:
    """The latency budget's part of the reranker's line, where there is one."""
    if not verdict.get("budget_ms"):
        return ""
    said = f"; budget {verdict['budget_ms']:g} ms"
    if verdict.get("cost_ms_p50_all") != verdict.get("cost_ms_p50") or verdict.get("over_budget"):
        said += f"; {verdict.get('cost_ms_p50_all')} ms to score {verdict.get('depth_asked')}"
    return said


def _counts(counts: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())
