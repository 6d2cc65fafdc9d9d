"""The answer policy (generation/policy.py): pure, no database."""

from generation import policy
from generation.policy import Item, decide

GOLD = Item(
    "The Gold card has an annual fee of 95 euros, which is waived in the first year.", "Card Handbook Annual fees", 0.8
)
PLATINUM = Item("The Platinum card has an annual fee of 250 euros.", "Card Handbook Annual fees", 0.75)
WEAK = Item("Gold and Platinum cardholders earn one reward point for every euro spent.", "Card Handbook Rewards", 0.4)
QUESTION = "What is the annual fee of the Gold card?"


def test_a_verified_answer_is_shown_and_cited():
    decision = decide("The Gold card has an annual fee of 95 euros [1].", QUESTION, [GOLD, PLATINUM], wants="amount")
    assert decision.kind == policy.GENERATED
    assert decision.answer == "The Gold card has an annual fee of 95 euros [1]."
    assert decision.cited == [0] and decision.spans[0] == [(0, len(decision.answer))]


def test_a_wrongly_numbered_marker_is_moved_to_the_evidence_that_holds_the_claim():
    decision = decide("The Gold card costs 95 euros a year [2].", QUESTION, [GOLD, PLATINUM], wants="amount")
    assert decision.kind == policy.GENERATED and decision.cited == [0] and "[1]" in decision.answer


def test_a_wrong_amount_is_replaced_by_the_quoted_evidence():
    decision = decide("The Gold card has an annual fee of 250 euros [1].", QUESTION, [GOLD, WEAK], wants="amount")
    assert decision.kind == policy.QUOTED
    # The value asked for first, then the evidence that states it.
    assert decision.answer == f"**95 euros** \u2014 \u201c{GOLD.text}\u201d [1]" and decision.cited == [0]
    assert "250" in decision.reason and decision.checks[0]["evidence"] is None


def test_a_negation_the_evidence_does_not_make_is_replaced():
    decision = decide(
        "The Platinum card has no annual fee [2].", "Is there a fee on the Platinum card?", [GOLD, PLATINUM]
    )
    assert decision.kind == policy.QUOTED and "negation" in decision.reason


def test_a_fact_from_evidence_ranked_far_below_the_best_does_not_verify():
    decision = decide(
        "Gold cardholders earn one reward point for every euro spent [2].", QUESTION, [GOLD, WEAK], margin=0.1
    )
    assert decision.kind == policy.QUOTED and "scored too low" in decision.reason


def test_an_answer_without_the_asked_value_is_replaced():
    decision = decide("The Gold card fee is waived in the first year [1].", QUESTION, [GOLD], wants="amount")
    assert decision.kind == policy.QUOTED and "states no amount" in decision.reason


def test_the_model_saying_the_documents_do_not_answer_is_overruled_by_the_evidence():
    decision = decide("The documents do not say.", QUESTION, [GOLD])
    assert decision.kind == policy.QUOTED and decision.answer.startswith("\u201cThe Gold card")


def test_a_close_runner_up_is_quoted_too():
    close = Item("The annual fee is charged on the card's anniversary.", "Card Handbook", 0.79)
    decision = decide("Nonsense 7.", QUESTION, [GOLD, close])
    assert decision.kind == policy.QUOTED and decision.cited == [0, 1] and "[2]" in decision.answer


def test_no_evidence_means_not_found():
    decision = decide("anything", QUESTION, [])
    assert decision.kind == policy.NOT_FOUND and decision.answer == policy.NOT_FOUND_ANSWER and decision.cited == []


def test_an_answer_about_something_the_evidence_never_names_is_replaced():
    # "diamond" is the question's rarest word: an answer using it asserts it.
    decision = decide(
        "The annual fee on the diamond card is 95 euros [1].",
        "what's the annual fee on the diamond card",
        [GOLD],
        wants="amount",
        salient=frozenset({"diamond"}),
    )
    assert decision.kind == policy.QUOTED and "does not mention: diamond" in decision.reason


def test_an_answer_that_says_nothing_or_asks_back_is_replaced():
    for text in ("Yes, you can [1].", "What is the annual fee of the Gold card [1]?"):
        assert decide(text, QUESTION, [GOLD]).kind == policy.QUOTED


def test_a_quote_is_put_on_one_line_without_gluing_a_heading_to_its_sentence():
    assert (
        policy.flatten("Payment limits\nTransfers have a daily limit.")
        == "Payment limits \u2014 Transfers have a daily limit."
    )
    assert (
        policy.flatten("Its rate is\n19.9 percent APR.\nThe Gold card.")
        == "Its rate is 19.9 percent APR. The Gold card."
    )


# -- how quotes read (issue #30, item 4) -------------------------------------------


def test_a_quote_goes_without_the_lead_the_model_reads_and_after_the_term_it_is_about():
    default = Item(
        "work_mem (integer) … The default is four megabytes.",
        "Resource Consumption",
        0.8,
        quote="The default is four megabytes.",
        label="work_mem (integer)",
    )
    decision = decide("Nonsense.", "default work_mem?", [default])
    assert decision.answer == "**work_mem (integer)**: \u201cThe default is four megabytes.\u201d [1]"


def test_a_table_row_is_quoted_as_a_small_table_under_its_header():
    row = Item(
        "| Account | Monthly fee |\n|---|---|\n| Basic | 0 |\n| Premium | 12 euros |",
        "Fees",
        0.8,
        quote="| Premium | 12 euros |",
        header="| Account | Monthly fee |",
    )
    decision = decide("Nonsense.", "premium account monthly fee?", [row], wants="amount")
    assert decision.answer == "| Account | Monthly fee |\n|---|---|\n| Premium | 12 euros [1] |"
    assert "|---|---|\n| Basic" not in decision.answer  # only the row asked about


def test_two_items_of_one_passage_are_one_citation_number():
    first = Item("The Gold card has an annual fee of 95 euros.", "Fees", 0.8, source=7)
    second = Item("The fee is waived in the first year.", "Fees", 0.79, source=7)
    decision = decide("Nonsense.", QUESTION, [first, second])
    assert "[2]" not in decision.answer and decision.answer.count("[1]") == 2
    assert decision.numbers == {0: 1, 1: 1} and decision.cited == [0, 1]
    other = Item("The fee is waived in the first year.", "Fees", 0.79, source=8)
    assert decide("Nonsense.", QUESTION, [first, other]).numbers == {0: 1, 1: 2}


def test_a_table_quote_and_prose_are_set_apart_by_a_blank_line():
    row = Item("| Card | Fee |\n|---|---|\n| Gold | 95 |", "Fees", 0.8, quote="| Gold | 95 |", header="| Card | Fee |")
    prose = Item("The fee is charged on the card's anniversary.", "Fees", 0.79)
    answer = decide("Nonsense.", QUESTION, [row, prose]).answer
    assert (
        answer
        == "| Card | Fee |\n|---|---|\n| Gold | 95 [1] |\n\n\u201cThe fee is charged on the card's anniversary.\u201d [2]"
    )
