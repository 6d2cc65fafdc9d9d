"""Answer-quality metrics (generation/evaluation.py): pure, no database."""

import pytest

from generation import evaluation
from generation.evaluation import LabelledQuestion, Outcome, holds, judge, parse_questions, summarise

GOLD = LabelledQuestion("q1", "Gold card fee?", True, ("95 euros",), "card-handbook.pdf")
ABSENT = LabelledQuestion("q2", "Zelle limit?", False)


def test_it_parses_labelled_questions_and_refuses_bad_lines():
    lines = [
        '{"id": "a", "question": "Fee?", "answers": ["95 euros"], "document": "x.pdf", "answerable": true}',
        "",
        '{"id": "b", "question": "Zelle?", "answerable": false}',
    ]
    parsed = parse_questions(lines)
    assert [q.id for q in parsed] == ["a", "b"] and parsed[1].answers == ()
    for bad in [
        '{"question": "Fee?", "answerable": true}',
        "not json",
        '{"question": " "}',
        '{"question": "a", "answerable": "yes"}',
    ]:
        with pytest.raises(evaluation.LabelError):
            parse_questions([bad])
    with pytest.raises(evaluation.LabelError, match="duplicate"):
        parse_questions(['{"id": "a", "question": "x", "answerable": false}'] * 2)


def test_an_answer_holds_the_fact_only_as_a_whole():
    assert holds("The fee is 95\u00a0Euros.", ["95 euros"])
    assert not holds("The fee is 195 euros.", ["95 euros"]) and not holds("250 euros", ["50 euros"])


def test_it_judges_right_wrong_and_abstained_answers():
    right = judge(
        GOLD, Outcome("It costs 95 euros [1].", True, "generated", ("The fee is 95 euros.",), ("card-handbook.pdf",))
    )
    wrong = judge(
        GOLD, Outcome("It costs 250 euros [1].", True, "generated", ("The fee is 250 euros.",), ("card-handbook.pdf",))
    )
    silent = judge(GOLD, Outcome("Not in the documents.", False, "not_found", (), ()))
    abstained = judge(ABSENT, Outcome("Not in the documents.", False, "not_found", (), ()))
    answered = judge(ABSENT, Outcome("The limit is 500 [1].", True, "generated", ("...",), ("faq.txt",)))
    assert right["holds_fact"] and right["cited_holds_fact"] and right["gold_cited"] and not right["wrong_cited"]
    assert wrong["wrong_cited"] and not wrong["holds_fact"]
    assert silent["false_abstention"] and not silent["wrong_cited"]
    assert abstained["abstained"] and not answered["abstained"] and answered["cited_anyway"]
    summary = summarise([right, wrong, silent, abstained, answered])
    assert summary["holds_fact"] == pytest.approx(1 / 3, abs=1e-3) and summary["wrong_cited"] == pytest.approx(
        1 / 3, abs=1e-3
    )
    assert summary["abstained"] == 0.5 and summary["false_abstention"] == pytest.approx(1 / 3, abs=1e-3)
    assert summary["kinds"] == {"generated": 3, "not_found": 2}
    assert "answer holds the fact" in evaluation.format_table(summary)


def test_percentiles_are_nearest_rank():
    assert evaluation.percentile([1, 2, 3, 4], 0.5) == 2 and evaluation.percentile([1, 2, 3, 4], 0.9) == 4
    assert evaluation.percentile([], 0.5) == 0.0


def test_the_threshold_table_says_what_each_threshold_would_do():
    rows = [
        {"answerable": True, "confidence": 0.8},
        {"answerable": True, "confidence": 0.4},
        {"answerable": False, "confidence": 0.3},
        {"answerable": False, "confidence": 0.6},
    ]
    low, high = evaluation.threshold_table(rows, [0.35, 0.5])
    assert low == {
        "threshold": 0.35,
        "false_abstention": 0.0,
        "abstained": 0.5,
        "not_found_precision": 1.0,
        "not_found_recall": 0.5,
    }
    assert high["false_abstention"] == 0.5 and high["abstained"] == 0.5 and high["not_found_precision"] == 0.5
