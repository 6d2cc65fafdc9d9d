"""Retrieval metrics over labelled queries. Pure: no Django.

Relevance is binary. For a ranked list of retrieved ids (best first) and the
set of relevant ids of one query:

    recall@k  share of the relevant ids found in the first k
    MRR       mean over queries of 1 / rank of the first relevant id in the
              first k (0 when none is there), i.e. MRR@k
    nDCG@k    DCG = sum of 1 / log2(rank + 1) over relevant ids in the first
              k, divided by the DCG of an ideal list (all relevant ids first)

Labels name chunks or documents. With documents, the retrieved chunks' ranked
list becomes a ranked list of their documents, each at the rank of its first
chunk: a document counts as found when any of its chunks is retrieved.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class LabelError(ValueError):
    """A malformed line in a queries file; the message says where."""


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    relevant: frozenset[int]
    unit: str  # "chunk" or "document": what `relevant` holds


@dataclass(frozen=True)
class Metrics:
    recall: float
    mrr: float
    ndcg: float

    def as_dict(self) -> dict:
        return {"recall": self.recall, "mrr": self.mrr, "ndcg": self.ndcg}


def json_objects(lines: Iterable[str], source: str, text_key: str):
    """(where, object) for each non-blank JSON line, each an object with a
    non-empty string under `text_key`; LabelError says where one is not."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            item = json.loads(line)
        except ValueError:
            raise LabelError(f"{where}: not JSON") from None
        if not isinstance(item, dict) or not isinstance(item.get(text_key), str) or not item[text_key].strip():
            raise LabelError(f'{where}: expected {{"{text_key}": "...", ...}} with a non-empty "{text_key}"')
        yield where, item


def parse_labels(lines: Iterable[str], source: str = "queries") -> list[LabelledQuery]:
    """JSON lines: {"query": "...", "relevant_chunk_ids": [...]} or
    {"query": "...", "relevant_document_ids": [...]}; blank lines are skipped."""
    labelled = []
    for where, item in json_objects(lines, source, "query"):
        keys = [key for key in ("relevant_chunk_ids", "relevant_document_ids") if key in item]
        if len(keys) != 1:
            raise LabelError(f"{where}: give exactly one of relevant_chunk_ids, relevant_document_ids")
        ids = item[keys[0]]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise LabelError(f"{where}: {keys[0]} must be a non-empty list of integers")
        unit = "chunk" if keys[0] == "relevant_chunk_ids" else "document"
        labelled.append(LabelledQuery(item["query"].strip(), frozenset(ids), unit))
    if not labelled:
        raise LabelError(f"{source}: no queries")
    return labelled


def first_occurrences(ids: Iterable[int]) -> list[int]:
    """The ids in order, each at its first position."""
    seen, ranked = set(), []
    for i in ids:
        if i not in seen:
            seen.add(i)
            ranked.append(i)
    return ranked


def recall_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int) -> float:
    relevant = set(relevant)
    if not relevant:
        raise ValueError("no relevant ids")
    return len(relevant & set(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[int], relevant: Iterable[int], k: int) -> float:
    relevant = set(relevant)
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[int], relevant: Iterable[int], k: int) -> float:
    relevant = set(relevant)
    if not relevant:
        raise ValueError("no relevant ids")
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def score_query(ranked: Sequence[int], relevant: Iterable[int], k: int) -> Metrics:
    ranked = first_occurrences(ranked)
    return Metrics(
        recall_at_k(ranked, relevant, k), reciprocal_rank(ranked, relevant, k), ndcg_at_k(ranked, relevant, k)
    )


def mean(metrics: Sequence[Metrics]) -> Metrics:
    if not metrics:
        raise ValueError("no metrics to average")
    n = len(metrics)
    return Metrics(
        sum(m.recall for m in metrics) / n, sum(m.mrr for m in metrics) / n, sum(m.ndcg for m in metrics) / n
    )


def format_table(summary: dict[str, Metrics], k: int, queries: int) -> str:
    """A plain text table: one row per method, one column per metric."""
    headers = ["method", f"recall@{k}", "MRR", f"nDCG@{k}"]
    rows = [[name, f"{m.recall:.3f}", f"{m.mrr:.3f}", f"{m.ndcg:.3f}"] for name, m in summary.items()]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(
            cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(cells)
        ).rstrip()

    return "\n".join([f"{queries} queries, k={k}", line(headers), line(["-" * w for w in widths]), *map(line, rows)])
