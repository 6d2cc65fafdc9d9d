"""retrieval/fusion.py: reciprocal rank fusion."""

import pytest

from retrieval.fusion import reciprocal_rank_fusion


def test_it_sums_one_over_k_plus_rank():
    fused = reciprocal_rank_fusion({"dense": [1, 2, 3], "bm25": [3, 4]}, k=60)
    assert fused == pytest.approx({1: 1 / 61, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 62})
    assert max(fused, key=fused.get) == 3  # found by both beats first in one


def test_one_ranking_keeps_its_order():
    fused = reciprocal_rank_fusion({"dense": [9, 4, 7]})
    assert sorted(fused, key=fused.get, reverse=True) == [9, 4, 7]


def test_it_counts_an_item_once_per_ranking_and_handles_nothing():
    assert reciprocal_rank_fusion({"a": [5, 5]}, k=0) == {5: 1.0}
    assert reciprocal_rank_fusion({}) == {} and reciprocal_rank_fusion({"a": []}) == {}
    with pytest.raises(ValueError):
        reciprocal_rank_fusion({"a": [1]}, k=-1)
