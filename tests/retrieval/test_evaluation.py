"""retrieval/evaluation.py: metrics and the labels format. No database."""

import math

import pytest

from retrieval.evaluation import (
    LabelError,
    LabelledQuery,
    Metrics,
    first_occurrences,
    format_table,
    mean,
    ndcg_at_k,
    parse_labels,
    recall_at_k,
    reciprocal_rank,
    score_query,
)


def test_recall_counts_relevant_ids_in_the_first_k():
    assert recall_at_k([1, 2, 3, 4], {2, 4, 9}, k=4) == pytest.approx(2 / 3)
    assert recall_at_k([1, 2, 3, 4], {4}, k=3) == 0.0
    assert recall_at_k([], {1}, k=5) == 0.0


def test_reciprocal_rank_is_one_over_the_first_relevant_rank_within_k():
    assert reciprocal_rank([7, 8, 2], {2, 8}, k=3) == 0.5
    assert reciprocal_rank([7, 8, 2], {2}, k=2) == 0.0


def test_ndcg_discounts_by_log_rank_against_the_ideal_list():
    assert ndcg_at_k([1, 2], {1, 2}, k=2) == 1.0
    assert ndcg_at_k([3, 1], {1}, k=2) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([3, 1, 2], {1, 2}, k=3) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    )
    assert ndcg_at_k([1], {1, 2, 3}, k=1) == 1.0  # the ideal list is cut at k too
    assert ndcg_at_k([4, 5], {1}, k=2) == 0.0


def test_documents_count_at_the_rank_of_their_first_chunk():
    assert first_occurrences([5, 5, 3, 5, 2]) == [5, 3, 2]
    assert score_query([5, 5, 3], {3}, k=2) == Metrics(recall=1.0, mrr=0.5, ndcg=pytest.approx(1 / math.log2(3)))


def test_it_averages_over_queries():
    assert mean([Metrics(1, 1, 1), Metrics(0, 0.5, 0)]) == Metrics(0.5, 0.75, 0.5)
    with pytest.raises(ValueError):
        mean([])


def test_it_parses_chunk_and_document_labels():
    lines = [
        '{"query": " fee ", "relevant_chunk_ids": [3, 4]}',
        "",
        '{"query": "lounge", "relevant_document_ids": [7]}',
    ]
    assert parse_labels(lines) == [
        LabelledQuery("fee", frozenset({3, 4}), "chunk"),
        LabelledQuery("lounge", frozenset({7}), "document"),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("not json", "q.jsonl:1: not JSON"),
        ('{"relevant_chunk_ids": [1]}', 'expected {"query"'),
        ('{"query": "x"}', "exactly one of"),
        ('{"query": "x", "relevant_chunk_ids": [1], "relevant_document_ids": [1]}', "exactly one of"),
        ('{"query": "x", "relevant_chunk_ids": ["1"]}', "non-empty list of integers"),
        ('{"query": "x", "relevant_document_ids": []}', "non-empty list of integers"),
    ],
)
def test_it_rejects_malformed_labels(line, message):
    with pytest.raises(LabelError, match=message.replace("{", r"\{").replace("(", r"\(")):
        parse_labels([line], source="q.jsonl")
    with pytest.raises(LabelError, match="no queries"):
        parse_labels(["", " "])


def test_it_formats_a_plain_table():
    table = format_table({"dense": Metrics(0.8, 0.65, 0.7), "bm25": Metrics(1.0, 0.5, 0.62)}, k=5, queries=3)
    assert table.splitlines() == [
        "3 queries, k=5",
        "method  recall@5    MRR  nDCG@5",
        "------  --------  -----  ------",
        "dense      0.800  0.650   0.700",
        "bm25       1.000  0.500   0.620",
    ]
