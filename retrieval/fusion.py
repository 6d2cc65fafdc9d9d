"""Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009). Pure: no Django.

Each ranking contributes 1 / (k + rank) to every item it holds (rank from 1);
items are ordered by the sum. It needs no score calibration between
retrievers (a cosine and a BM25 score are not comparable), and k = 60 damps
the difference between the first few ranks, as in the paper.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def reciprocal_rank_fusion(rankings: Mapping[str, Iterable[int]], k: int = 60) -> dict[int, float]:
    """{item: fused score} over all rankings; a ranking lists items best first
    (an item repeated in one ranking counts at its first position only)."""
    if k < 0:
        raise ValueError("k must be >= 0")
    fused: dict[int, float] = {}
    for ranking in rankings.values():
        seen = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused
