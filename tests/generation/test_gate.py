"""The "not in the documents" gate (generation/gate.py): pure, no database."""

import pytest
from django.conf import settings

from generation import gate
from generation.claims import terms
from generation.evidence import Passage, Unit

CARDS = Passage("", "Card Services Handbook", "Annual fees", document=1)
SAVINGS = Passage("", "Savings Accounts", "Rates at a glance", document=2)
MORTGAGES = Passage("", "Mortgage Guide", "Our mortgages", document=3)


def unit(passage: int, score: float, text: str, heading: str = "") -> Unit:
    return Unit(passage, 0, len(text), 0, len(text), text, heading, score=score)


def weights(question: str, rare: str = "") -> dict:
    """Each of the question's terms weighing 1, its `rare` ones 3."""
    return {t: 1.0 for t in terms(question)} | {t: 3.0 for t in terms(rare)}


def answers(best, passages, question_weights) -> bool:
    return gate.probability(gate.signals(best, passages, question_weights)) >= settings.RAG_EVIDENCE_THRESHOLD


def test_the_signals_are_the_best_score_its_lead_whether_the_two_best_agree_and_what_no_unit_mentions():
    best = [
        unit(0, 0.58, "The Gold card has an annual fee of 95 euros."),
        unit(0, 0.57, "The Platinum card has an annual fee of 250 euros."),
        unit(1, 0.40, "The Easy Saver pays 1.75 percent."),
    ]
    values = gate.signals(best, [CARDS, SAVINGS], weights("annual fee diamond card", rare="diamond"))
    assert values["best"] == 0.58 and values["lead"] == pytest.approx(0.01)
    assert values["together"] == 1.0  # both from the card handbook
    assert values["missing"] == pytest.approx(3 / 6)  # "diamond" (3 of 1 + 1 + 3 + 1) is in none of them
    apart = gate.signals([best[0], best[2]], [CARDS, SAVINGS], weights("annual fee"))
    assert apart["together"] == 0.0 and apart["lead"] == pytest.approx(0.18) and apart["missing"] == 0.0


def test_the_lead_is_capped_and_a_lone_unit_counts_as_far_ahead():
    lone = gate.signals([unit(0, 0.5, "The Gold card has an annual fee of 95 euros.")], [CARDS], weights("fee"))
    assert lone["lead"] == gate.LEAD_CAP and lone["together"] == 0.0
    far = gate.signals([unit(0, 0.9, "a"), unit(1, 0.1, "b")], [CARDS, SAVINGS], weights("fee"))
    assert far["lead"] == gate.LEAD_CAP


def test_a_heading_or_title_mentions_a_term_for_its_unit():
    best = [unit(0, 0.5, "It is 95 euros.", heading="Gold card")]
    assert gate.signals(best, [CARDS], weights("gold card handbook"))["missing"] == 0.0


def test_a_clear_best_answers_and_weak_evidence_does_not():
    clear = [unit(0, 0.62, "The Gold card has an annual fee of 95 euros."), unit(1, 0.40, "The Easy Saver pays 1.75%.")]
    assert answers(clear, [CARDS, SAVINGS], weights("gold card annual fee"))
    weak = [unit(0, 0.30, "The Gold card has an annual fee of 95 euros."), unit(1, 0.29, "The Easy Saver pays 1.75%.")]
    assert not answers(weak, [CARDS, SAVINGS], weights("gold card annual fee"))
    assert gate.probability(gate.signals([], [], {})) == 0.0


def test_evidence_under_the_floor_never_answers():
    """Same document, every term mentioned, far ahead: still too weak."""
    best = [unit(0, gate.FLOOR - 0.01, "The Gold card has an annual fee of 95 euros."), unit(0, 0.05, "Other.")]
    values = gate.signals(best, [CARDS], weights("gold card annual fee"))
    assert values["together"] == 1.0 and values["missing"] == 0.0
    assert gate.probability(values) == 0.0
    assert gate.probability({**values, "best": gate.FLOOR}) > 0.9


def test_siblings_from_two_documents_missing_the_rare_term_do_not_answer_but_neighbours_in_one_document_do():
    """Two units alike from two documents, neither naming the question's
    rarest term: its subject is neither (the Diamond card meets the Gold card
    and a mortgage); two alike from one document, mentioning every term:
    neighbours that agree."""
    question = weights("expense claim deadline after trip")
    neighbours = [
        unit(0, 0.50, "Expense claims must be filed within 30 days of returning from a trip (the deadline)."),
        unit(0, 0.48, "Claims filed later than 90 days after a trip are rejected."),
    ]
    assert answers(neighbours, [Passage("", "Travel Policy", "Expense claims", document=7)], question)
    siblings = [
        unit(0, 0.50, "The Gold card has an annual fee of 95 euros."),
        unit(1, 0.48, "The arrangement fee is 999 euros."),
    ]
    assert not answers(siblings, [CARDS, MORTGAGES], weights("annual fee diamond card", rare="diamond"))


def test_a_rare_term_that_no_unit_mentions_lowers_the_probability():
    best = [unit(0, 0.55, "The Gold card has an annual fee of 95 euros."), unit(1, 0.45, "The Easy Saver pays 1.75%.")]
    known = gate.probability(gate.signals(best, [CARDS, SAVINGS], weights("gold card annual fee")))
    unknown = gate.probability(gate.signals(best, [CARDS, SAVINGS], weights("gold card annual fee paypal", "paypal")))
    assert unknown < known


def test_passages_without_a_document_are_grouped_by_title():
    untitled = [Passage("", "Handbook", "A"), Passage("", "Handbook", "B"), Passage("", "Other", "C")]
    assert gate.signals([unit(0, 0.5, "a"), unit(1, 0.4, "b")], untitled, {})["together"] == 1.0
    assert gate.signals([unit(0, 0.5, "a"), unit(2, 0.4, "b")], untitled, {})["together"] == 0.0


def test_evidence_lacking_the_kind_of_value_asked_for_is_named():
    texts = ["The Gold card has an annual fee.", "Annual fees are waived in the first year."]
    assert gate.lacking(texts, "amount") == "amount"
    assert gate.lacking([*texts, "The Platinum card costs 250 euros a year."], "amount") == ""
    assert gate.lacking(texts, "duration") == "duration"
    assert gate.lacking(["Cards are issued for five years."], "duration") == ""
    assert gate.lacking(["Specifies the shutdown mode."], "default") == "default"
    assert gate.lacking(["The default is `fast`."], "default") == ""
    assert gate.lacking(texts, "any") == ""  # nothing particular is asked for
    assert gate.lacking([], "number") == "number"
    # "How many seconds does pg_ctl -w wait by default?": a default, and a duration, in one unit.
    waits = ["PGCTLTIMEOUT … Default limit on the number of seconds to wait.", "The timeout is 60 seconds."]
    assert gate.lacking(waits, "default", "duration") == "duration"
    assert gate.lacking([*waits, "The default is 60 seconds."], "default", "duration") == ""
    assert gate.lacking(waits, "default") == ""
