"""Exact top-k BM25 search over a built bm25s score matrix, pruned by
MaxScore (see Postings). Pure: no Django; numpy only."""

from __future__ import annotations

import numpy as np


def kth_largest(values: np.ndarray, k: int):
    """The k-th largest of `values` (1 <= k <= len), exactly. On a large array
    a strided sample first guesses a bound that about 4k values pass; if at
    least k pass, the k-th largest is among them, and selecting from those few
    is several times cheaper than selecting from all (a million scores: about
    6 ms with np.partition)."""
    n = len(values)
    if n > 65_536 and 8 * k < n:
        sample = values[:: n // 16_384]
        rank = min(len(sample) - 1, int(len(sample) * (1 - 4 * k / n)))
        above = values[values >= np.partition(sample, rank)[rank]]
        if len(above) >= k:
            values, n = above, len(above)
    return np.partition(values, n - k)[n - k]


class Postings:
    """Top-k BM25 search over a built bm25s matrix, exact and pruned.

    bm25s stores each term's posting list (rows and their precomputed score
    contributions) as a column of a CSC matrix, and scores a query by adding
    whole columns into a dense array of every row: at a million chunks a
    common word's column has most of them, and that plus selecting the top k
    of the array cost about 27 ms a query. Here terms are taken by their
    largest contribution, highest first (MaxScore, Turtle & Flood 1995):
    once the terms left could not lift a row that none of the terms taken so
    far contain up to the k-th best score yet, those terms are only looked up
    (binary search in their sorted posting list) for the rows already found.
    The result is the same as scoring every row: a row left out scores below
    the k-th, strictly. A term the query repeats counts again, as in bm25s.
    """

    DENSE_SHARE = 8  # past rows/8 rows found, a dense array beats sorting them

    def __init__(self, engine):
        self.engine = engine
        if engine.nonoccurrence_array is not None:
            raise ValueError("BM25 variants that score absent terms (BM25L, BM25+) are not supported")
        self.data = engine.scores["data"]
        self.indices = engine.scores["indices"]
        self.indptr = np.asarray(engine.scores["indptr"], dtype=np.int64)
        self.rows = int(engine.scores["num_docs"])
        starts, ends = self.indptr[:-1], self.indptr[1:]
        filled = ends > starts
        self.maxes = np.zeros(len(starts), dtype=np.float64)
        if filled.any():
            # reduceat's segments run from one start to the next: over the
            # filled columns alone, they are exactly the columns.
            self.maxes[filled] = np.maximum.reduceat(self.data, starts[filled])
        if not self._columns_sorted(starts[filled][1:]):  # binary search needs each column's rows in order
            column = np.repeat(np.arange(len(starts)), ends - starts)
            order = np.lexsort((self.indices, column))
            self.indices, self.data = self.indices[order], self.data[order]

    def _columns_sorted(self, boundaries: np.ndarray, block: int = 1 << 22) -> bool:
        """Whether rows increase within every column (`boundaries`: where
        columns after the first begin); read in blocks to bound memory."""
        indices, total = self.indices, len(self.indices)
        for first in range(0, max(total - 1, 0), block):
            last = min(first + block, total - 1)
            step = np.diff(indices[first : last + 1].astype(np.int64))
            inside = boundaries[(boundaries > first) & (boundaries <= last)] - 1 - first
            step[inside] = 1  # one column ends and the next begins
            if step.min() <= 0:
                return False
        return True

    def top(self, term_ids: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the k best rows that share a term with the query,
        best first, ties by row."""
        weight: dict[int, int] = {}
        for term in term_ids:
            weight[int(term)] = weight.get(int(term), 0) + 1
        terms = sorted(weight, key=lambda t: -weight[t] * self.maxes[t])
        bounds = np.array([weight[t] * self.maxes[t] for t in terms])
        # What the terms from i on could add to a row, a little high so that
        # float32 sums never make the pruning test wrong.
        left = np.cumsum(bounds[::-1])[::-1] * (1 + 1e-5) + 1e-6
        scores = np.zeros(self.rows, dtype=np.float32)
        taken, found = [], None  # posting lists added in full; their rows (None: not worked out since)
        threshold, pruning = 0.0, False
        for i, term in enumerate(terms):
            start, end = self.indptr[term], self.indptr[term + 1]
            rows, values, times = self.indices[start:end], self.data[start:end], np.float32(weight[term])
            # The k-th score so far is at most what the terms taken could give
            # (their bounds' sum): only when that passes what the terms left
            # could add is it worth working out.
            if not pruning and taken and left[0] - left[i] > left[i]:
                if found is None:
                    found = self._union(taken, scores)
                    if len(found) >= k:
                        threshold = float(kth_largest(scores[found], k))
                pruning = len(found) >= k and left[i] < threshold  # and so for every term after this one
            if not pruning:
                scores[rows] += values * times if times != 1 else values
                taken.append(rows)
                found = None
            else:
                # A row that even every term left could not lift to the k-th score is out.
                found = found[scores[found] + np.float32(left[i]) >= threshold]
                at = np.minimum(np.searchsorted(rows, found), len(rows) - 1)
                hit = rows[at] == found
                scores[found[hit]] += values[at[hit]] * times
        if found is None and taken:
            found = self._union(taken, scores)
        if found is None or not len(found):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        found = found[scores[found] > 0]
        if len(found) > k:  # every row tied with the k-th, then the first k by (score, row)
            kth = kth_largest(scores[found], k)
            found = found[scores[found] >= kth]
        order = np.lexsort((found, -scores[found]))[:k]
        best = found[order].astype(np.int64)
        return best, scores[best]

    def _union(self, taken: list[np.ndarray], scores: np.ndarray) -> np.ndarray:
        if sum(len(rows) for rows in taken) * self.DENSE_SHARE > self.rows:
            return np.flatnonzero(scores)
        return np.unique(np.concatenate(taken)) if len(taken) > 1 else taken[0].astype(np.int64)
