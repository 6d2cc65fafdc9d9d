"""The ranking rule of a hybrid search, in one place. Pure: no Django.

Search (retrieval/search.py) and the fine-tuning evaluation
(retrieval/finetune/evaluate.py) both rank by it, so a fine-tuned model is
judged by the order users would see:

- each retriever contributes its best `depth(k)` candidates;
- the rankings are fused by reciprocal rank fusion (retrieval/fusion.py);
- ties are broken by the passage's cosine with the query, then by chunk id;
- a candidate without a cosine is not ranked (a search reads every
  candidate's cosine from its stored vector; one without a vector cannot be
  scored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from retrieval.fusion import reciprocal_rank_fusion


def depth(k: int) -> int:
    """Candidates each retriever contributes to the fusion for a top-k search."""
    return max(3 * k, 30)


def fused_order(
    rankings: Mapping[str, Sequence[int]], cosine: Mapping[int, float], rrf_k: int, k: int
) -> tuple[list[int], dict[int, float]]:
    """(the top-k ids, the fused score of every candidate): `rankings` lists
    each retriever's candidates best first, `cosine` gives each candidate's
    cosine with the query (the tie-break)."""
    fused = reciprocal_rank_fusion(rankings, rrf_k)
    order = sorted((pk for pk in fused if pk in cosine), key=lambda pk: (-fused[pk], -cosine[pk], pk))[:k]
    return order, fused


def by_document(hits: Sequence, k: int, per_document: int) -> list[tuple[object, list]]:
    """Passage hits (best first, each with a `document_id`) grouped by
    document: [(the document's best passage, up to `per_document` more of its
    passages in rank order)], documents ordered by their best passage, at most k."""
    groups: dict[int, tuple[object, list]] = {}
    for hit in hits:
        if hit.document_id in groups:
            more = groups[hit.document_id][1]
            if len(more) < per_document:
                more.append(hit)
        elif len(groups) < k:
            groups[hit.document_id] = (hit, [])
    return list(groups.values())
