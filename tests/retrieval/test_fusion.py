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


def test_the_ranking_rule_breaks_ties_by_cosine_then_id_and_skips_what_has_no_cosine():
    from retrieval import ranking

    rankings = {"dense": [1, 2], "bm25": [2, 1, 3, 4]}  # 1 and 2 tie in the fused score
    order, fused = ranking.fused_order(rankings, {1: 0.3, 2: 0.7, 4: 0.1}, rrf_k=60, k=10)
    assert order == [2, 1, 4] and set(fused) == {1, 2, 3, 4}  # 3 has no vector: not ranked
    assert ranking.fused_order({"bm25": [5, 6]}, {5: 0.2, 6: 0.2}, rrf_k=60, k=1)[0] == [5]
    assert ranking.fused_order({"a": [7], "b": [6]}, {6: 0.5, 7: 0.5}, rrf_k=60, k=2)[0] == [6, 7]  # then by id
    assert ranking.depth(5) == 30 and ranking.depth(20) == 60


def test_results_by_document_keep_each_documents_best_passage_and_a_few_more():
    from types import SimpleNamespace

    from retrieval import ranking

    hits = [SimpleNamespace(chunk_id=c, document_id=d) for c, d in [(1, 7), (2, 7), (3, 8), (4, 7), (5, 9), (6, 8)]]
    grouped = ranking.by_document(hits, k=2, per_document=1)
    assert [(best.chunk_id, [h.chunk_id for h in more]) for best, more in grouped] == [(1, [2]), (3, [6])]
    assert [best.document_id for best, _ in ranking.by_document(hits, k=5, per_document=0)] == [7, 8, 9]
