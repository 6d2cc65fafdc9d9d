"""Hard negatives: passages that the current retrievers rank high for a query
but that do not answer it. Pure: no Django; vectors and the BM25 index are
passed in.

Candidates are the training passages that dense search (the serving model)
and BM25 rank highest for the query, fused by reciprocal rank. As in ChipNeMo,
candidates that may in fact be relevant are removed before one is chosen:

- the positive passage itself;
- a passage of the same section (same document and heading path): neighbours
  overlap and often answer the same question;
- a passage holding the query word for word (an ICT sentence in the overlap
  of the next passage);
- a passage that the serving model scores as answering: cosine to the query
  above the positive's minus `margin` (positive-aware mining, as in
  NV-Retriever's "TopK-MarginPos"), since a negative as close as the positive
  is more likely an unlabelled positive than a mistake.

The best surviving candidate is the pair's hard negative.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from retrieval.finetune.data import Passage
from retrieval.finetune.queries import Pair
from retrieval.fusion import reciprocal_rank_fusion

DEPTH = 30  # candidates from each retriever
MARGIN = 0.05


@dataclass(frozen=True)
class Triplet:
    pair: Pair
    negative: Passage
    source: str  # "dense", "bm25" or "both": which retriever ranked the negative

    def as_dict(self) -> dict:
        return {
            **self.pair.as_dict(),
            "negative_chunk_id": self.negative.chunk_id,
            "negative_document_id": self.negative.document_id,
            "negative_source": self.source,
        }


@dataclass
class MiningStats:
    pairs: int = 0
    with_negative: int = 0
    skipped: Counter = field(default_factory=Counter)  # candidates removed, by reason
    sources: Counter = field(default_factory=Counter)  # chosen negatives, by retriever

    def as_dict(self) -> dict:
        return {
            "pairs": self.pairs,
            "with_negative": self.with_negative,
            "without_negative": self.pairs - self.with_negative,
            "candidates_removed": dict(sorted(self.skipped.items())),
            "negative_found_by": dict(sorted(self.sources.items())),
        }


def mine(
    pairs: Sequence[Pair],
    passages: Sequence[Passage],
    *,
    query_vectors: np.ndarray,
    positive_vectors: np.ndarray,
    passage_vectors: np.ndarray,
    bm25,
    margin: float = MARGIN,
    depth: int = DEPTH,
    rrf_k: int = 60,
) -> tuple[list[Triplet], MiningStats]:
    """One hard negative per pair, where one survives the filters.
    `passage_vectors[i]` is the normalised vector of `passages[i]`;
    `query_vectors[j]` and `positive_vectors[j]` those of `pairs[j]`'s query and
    positive text; `bm25` a BM25Index over the passages' chunk ids."""
    by_id = {p.chunk_id: p for p in passages}
    row_of = {p.chunk_id: i for i, p in enumerate(passages)}
    ids = np.array([p.chunk_id for p in passages], dtype=np.int64)
    stats = MiningStats(pairs=len(pairs))
    triplets = []
    depth = min(depth, len(passages))
    for start in range(0, len(pairs), 256):
        block = slice(start, start + 256)
        scores = query_vectors[block] @ passage_vectors.T  # cosines: every vector is normalised
        for row, pair in enumerate(pairs[block]):
            cosines = scores[row]
            top = np.argpartition(-cosines, depth - 1)[:depth] if depth < len(ids) else np.arange(len(ids))
            dense = [int(ids[i]) for i in top[np.lexsort((ids[top], -cosines[top]))]]
            lexical = [int(i) for i in bm25.search(pair.query, depth)[1]]
            fused = reciprocal_rank_fusion({"dense": dense, "bm25": lexical}, rrf_k)
            order = sorted(fused, key=lambda pk: (-fused[pk], pk))
            ceiling = float(query_vectors[start + row] @ positive_vectors[start + row]) - margin
            positive = by_id.get(pair.chunk_id)
            section = positive.section if positive else (pair.document_id, None)
            chosen = None
            for pk in order:
                reason = _reject(pair, by_id[pk], section, float(cosines[row_of[pk]]), ceiling)
                if reason:
                    stats.skipped[reason] += 1
                    continue
                chosen = pk
                break
            if chosen is None:
                continue
            source = "both" if chosen in dense and chosen in lexical else ("dense" if chosen in dense else "bm25")
            stats.sources[source] += 1
            stats.with_negative += 1
            triplets.append(Triplet(pair, by_id[chosen], source))
    return triplets, stats


def _reject(pair: Pair, candidate: Passage, section, cosine: float, ceiling: float) -> str | None:
    if candidate.chunk_id == pair.chunk_id:
        return "positive"
    if candidate.section == section:
        return "same_section"
    if len(pair.query) >= 20 and pair.query in " ".join(candidate.text.split()):
        return "contains_query"
    if cosine > ceiling:
        return "scored_as_answering"
    return None
