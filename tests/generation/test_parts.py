"""Questions of several parts (generation/parts.py): pure, no database."""

import pytest

from generation import parts
from generation.policy import QUOTED, Item

FEE = Item("The Gold card has an annual fee of 95 euros.", "Card Handbook", 0.8, source=1)
WAIVER = Item("The fee is waived in the first year.", "Card Handbook", 0.7, source=1)
REPLACEMENT = Item("A replacement card arrives within five working days.", "Support", 0.8, source=2)


@pytest.mark.parametrize(
    "question, expected",
    [
        (
            "How do I report a lost card and how long does a replacement take?",
            ["How do I report a lost card?", "how long does a replacement take?"],
        ),
        (
            "what is the daily meal allowance when travelling? and who approves the trip?",
            ["what is the daily meal allowance when travelling?", "who approves the trip?"],
        ),
        (
            "How much is the Gold fee, and is it waived in the first year?",
            ["How much is the Gold fee?", "is it waived in the first year?"],
        ),
        ("is it safe; can I share my PIN?", ["is it safe?", "can I share my PIN?"]),
    ],
)
def test_it_splits_a_question_into_the_questions_it_asks(question, expected):
    assert parts.split(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "What is the annual fee of the Gold card?",
        "What are the fees for Gold and Platinum?",  # one question about two things
        "Can I pay by card and how?",  # "how" names nothing of its own
        "Does the fee cover cards and accounts?",
    ],
)
def test_a_question_that_asks_one_thing_is_one_part(question):
    assert parts.split(question) == [" ".join(question.split())]


def test_a_later_part_that_refers_back_carries_the_first_parts_subject():
    assert parts.standalone(["What is work_mem?", "what is its default?"]) == [
        "What is work_mem?",
        "what is its default? (work_mem)",
    ]
    assert parts.standalone(["How do I report a lost card?", "how long does a replacement take?"])[1] == (
        "how long does a replacement take?"
    )


def test_every_part_is_answered_in_place_with_its_own_citation():
    decision = parts.compose(
        [
            parts.Part("How much is the Gold card fee?", [FEE], True, "amount"),
            parts.Part("how long does a replacement take?", [REPLACEMENT], True, "duration"),
        ]
    )
    assert decision.kind == QUOTED
    assert decision.answer == (
        "- *How much is the Gold card fee?* **95 euros** \u2014 \u201cThe Gold card has an annual fee of 95 euros.\u201d [1]\n"
        "- *How long does a replacement take?* **five working days** \u2014 "
        "\u201cA replacement card arrives within five working days.\u201d [2]"
    )
    assert decision.cited == [0, 1] and decision.numbers == {0: 1, 1: 2}
    for index, item in enumerate([FEE, REPLACEMENT]):
        ((start, end),) = decision.spans[index]
        assert item.text in decision.answer[start:end] and decision.answer[end - 3 : end] == f"[{index + 1}]"


def test_a_part_the_documents_do_not_answer_is_said_so_while_the_rest_is_answered():
    decision = parts.compose(
        [
            parts.Part("How much is the Gold card fee?", [FEE], True, "amount"),
            parts.Part("does it include lounge access?", [], False),
        ]
    )
    assert (
        decision.answer.splitlines()[1] == "- *Does it include lounge access?* The documents do not answer this part."
    )
    assert decision.cited == [0] and "[2]" not in decision.answer


def test_parts_answered_from_one_passage_share_its_number():
    decision = parts.compose(
        [
            parts.Part("How much is the Gold card fee?", [FEE], True, "amount"),
            parts.Part("is it waived?", [WAIVER], True),
        ]
    )
    assert decision.answer.count("[1]") == 2 and "[2]" not in decision.answer


def test_a_table_row_stays_inside_its_list_item():
    row = Item("| Card | Fee |\n|---|---|\n| Gold | 95 |", "Fees", 0.8, quote="| Gold | 95 |", header="| Card | Fee |")
    decision = parts.compose([parts.Part("Gold fee?", [row], True), parts.Part("replacement?", [REPLACEMENT], True)])
    assert "- *Gold fee?* \n\n  | Card | Fee |\n  |---|---|\n  | Gold | 95 [1] |\n- *Replacement?*" in decision.answer
    from chat.rendering import render

    html = " ".join(render(decision.answer).split())
    assert "<li>" in html and "<td>95 [1]</td>" in html and html.count("<li>") == 2


# -- lists and comparisons -----------------------------------------------------------


@pytest.mark.parametrize(
    "question, expected",
    [
        ("List the daily transfer limits by channel.", True),
        ("compare the annual fees of the Gold and Platinum cards", True),
        ("Everyday vs Premier account: what are the monthly fees?", True),
        ("give me a bulleted list of the mortgage fees", True),
        ("What is the annual fee of the Gold card?", False),
    ],
)
def test_it_knows_a_request_for_a_list_or_a_comparison(question, expected):
    assert parts.asks_for_list(question) is expected


PLATINUM = Item("The Platinum card has an annual fee of 250 euros.", "Card Handbook", 0.78, source=1)
REWARDS = Item("Gold cardholders earn one reward point for every euro spent.", "Card Handbook", 0.77, source=3)
FAR = Item("The Silver card has an annual fee of 0 euros.", "Card Handbook", 0.5, source=4)


def test_a_comparison_lists_every_close_item_that_states_the_value_asked_for():
    decision = parts.compose_list([FEE, PLATINUM, REWARDS, FAR], "amount")
    assert decision.answer == (
        "- \u201cThe Gold card has an annual fee of 95 euros.\u201d [1]\n"
        "- \u201cThe Platinum card has an annual fee of 250 euros.\u201d [1]"
    )  # not the rewards (no amount) nor the Silver card (scored far below); one passage, one number
    assert decision.cited == [0, 1]
    for index in decision.cited:
        ((start, end),) = decision.spans[index]
        assert decision.answer[start:end].startswith("- \u201c")


def test_rows_of_one_table_are_listed_as_that_table():
    header = "| Account | Rate |"
    rows = [
        Item(
            f"{header}\n|---|---|\n| {name} | {rate} |",
            "Rates",
            score,
            quote=f"| {name} | {rate} |",
            header=header,
            source=n,
        )
        for n, (name, rate, score) in enumerate([("Easy Saver", "1.75%", 0.8), ("Junior Saver", "4.00%", 0.75)])
    ]
    decision = parts.compose_list(rows, "percent")
    assert decision.answer == "| Account | Rate |\n|---|---|\n| Easy Saver | 1.75% [1] |\n| Junior Saver | 4.00% [2] |"
    ((start, end),) = decision.spans[1]
    assert decision.answer[start:end] == "| Junior Saver | 4.00% [2] |"


def test_a_list_of_one_is_a_lone_quote_led_by_its_value():
    assert parts.compose_list([FEE, REWARDS], "amount").answer == (
        "**95 euros** \u2014 \u201cThe Gold card has an annual fee of 95 euros.\u201d [1]"
    )


def test_a_part_whose_sentence_an_earlier_quote_shows_is_not_answered_by_it():
    shown = [(7, 100, 240)]  # the first part quoted chars 100-240 of passage 7
    assert parts.already_quoted((7, 108, 187), shown)  # the same words again
    assert not parts.already_quoted((7, 188, 260), shown)  # the next sentence: new
    assert not parts.already_quoted((8, 108, 187), shown)  # another passage


def test_a_list_does_not_repeat_an_item_its_lead_in_already_quotes():
    lead_in = Item("Limits by channel: - Mobile app: 10,000 euros per day", "Limits", 0.8, source=1)
    first = Item(
        "- Mobile app: 10,000 euros per day", "Limits", 0.79, quote="Mobile app: 10,000 euros per day", source=1
    )
    second = Item("- Telephone: 5,000 euros per day", "Limits", 0.78, quote="Telephone: 5,000 euros per day", source=1)
    assert parts.list_items([lead_in, first, second], "amount") == [0, 2]
