"""Passages, the train/held-out split and sampling. Pure: no Django.

The split is by document, never by chunk: a held-out document has none of its
passages in training, so evaluation measures what the model does on text it
never saw. Everything random takes a seed and sorts its input first, so the
same corpus and seed give the same split and samples on any machine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    document_id: int
    heading: str
    text: str
    title: str = ""  # the document's

    @property
    def section(self) -> tuple[int, str]:
        """Passages of one section share it: same document, same heading path."""
        return (self.document_id, self.heading)


@dataclass(frozen=True)
class Split:
    train: tuple[int, ...]  # document ids, sorted
    heldout: tuple[int, ...]


def split_documents(document_ids: Iterable[int], heldout_share: float, seed: int) -> Split:
    """Hold out round(share * n) documents (at least one, and at least one left
    to train on when there are two or more), chosen by a seeded shuffle."""
    ids = sorted(set(int(i) for i in document_ids))
    if not 0 < heldout_share < 1:
        raise ValueError("heldout_share must be between 0 and 1")
    if len(ids) < 2:
        raise ValueError(f"Need at least 2 documents to hold some out, have {len(ids)}")
    count = min(len(ids) - 1, max(1, round(heldout_share * len(ids))))
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    heldout = sorted(shuffled[:count])
    return Split(train=tuple(sorted(set(ids) - set(heldout))), heldout=tuple(heldout))


def sample(passages: Sequence[Passage], count: int, seed: int) -> list[Passage]:
    """`count` passages (all when fewer), chosen by a seeded shuffle of the
    passages in chunk order; returned in that shuffled order."""
    ordered = sorted(passages, key=lambda p: p.chunk_id)
    random.Random(seed).shuffle(ordered)
    return ordered[: max(0, count)]


def share(total: int, part: int, whole: int) -> int:
    """The part of a budget of `total` that falls to `part` of `whole` items
    (at least 1 when the part and the budget are not empty)."""
    if total <= 0 or part <= 0 or whole <= 0:
        return 0
    return max(1, math.floor(total * part / whole + 0.5))
