"""generation/prompts.py: numbered evidence within the context budget; follow-ups."""

import pytest

from generation.prompts import SYSTEM_PROMPT, EvidenceLine, build_prompt, fitted


def words(text: str) -> int:
    return len(text.split())


QUESTION = "What is the annual fee of the Gold card?"
EVIDENCE = [
    EvidenceLine("The Gold card has an annual fee of 95 euros.", heading="Annual fees"),
    EvidenceLine("The Silver card has no annual fee."),
    EvidenceLine("The Platinum card includes travel insurance.", heading="Insurance"),
    EvidenceLine("Cards are issued within five days."),
]


def fixed_cost(question: str) -> int:
    return words(SYSTEM_PROMPT) + words(f"Evidence:\n\nQuestion: {question}") + 16


def item_cost(number: int, line: EvidenceLine) -> int:
    return words(f"[{number}] ({line.heading}) {line.text}" if line.heading else f"[{number}] {line.text}") + 2


def user_message(prompt) -> str:
    (user,) = [m["content"] for m in prompt.messages if m["role"] == "user"]
    return user


def test_it_builds_a_system_and_a_user_message():
    prompt = build_prompt(QUESTION, EVIDENCE, count_tokens=words, budget=10_000)
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert prompt.messages[0]["content"] == SYSTEM_PROMPT


def test_it_numbers_evidence_in_order_from_one_with_its_heading():
    prompt = build_prompt(QUESTION, EVIDENCE, count_tokens=words, budget=10_000)
    assert prompt.passages == EVIDENCE and prompt.dropped == 0
    user = user_message(prompt)
    assert user.startswith("Evidence:\n[1] (Annual fees) The Gold card") and "[2] The Silver card" in user
    assert "[5]" not in user and "[0]" not in user


def test_it_puts_the_stripped_question_after_the_evidence():
    user = user_message(build_prompt(f"  {QUESTION}\n", EVIDENCE, count_tokens=words, budget=10_000))
    assert user.endswith(f"\n\nQuestion: {QUESTION}") and user.index("Question:") > user.index("[4]")


def test_it_collapses_whitespace():
    user = user_message(
        build_prompt(QUESTION, [EvidenceLine("Line one\n\n   line   two\tend.")], count_tokens=words, budget=10_000)
    )
    assert "[1] Line one line two end." in user


@pytest.mark.parametrize("kept", [0, 1, 2, 3, 4])
def test_it_keeps_what_fits_and_never_cuts_an_item(kept):
    budget = fixed_cost(QUESTION) + sum(item_cost(n, e) for n, e in enumerate(EVIDENCE[:kept], start=1))
    prompt = build_prompt(QUESTION, EVIDENCE, count_tokens=words, budget=budget)
    assert prompt.passages == EVIDENCE[:kept] and prompt.dropped == len(EVIDENCE) - kept
    user = user_message(prompt)
    for line in EVIDENCE[kept:]:
        assert line.text not in user
    assert QUESTION in user


def test_an_item_too_long_for_the_budget_is_skipped_and_a_shorter_one_after_it_still_fits():
    # One huge passage must not leave the model with no evidence at all.
    lines = [EvidenceLine("short one."), EvidenceLine("a much longer passage " * 200), EvidenceLine("tiny.")]
    budget = fixed_cost(QUESTION) + item_cost(1, lines[0]) + item_cost(2, lines[2])
    prompt = build_prompt(QUESTION, lines, count_tokens=words, budget=budget)
    assert prompt.passages == [lines[0], lines[2]] and prompt.dropped == 1
    assert "[2] tiny." in user_message(prompt)


def test_it_still_asks_the_question_when_nothing_fits():
    prompt = build_prompt(QUESTION, EVIDENCE, count_tokens=words, budget=2 * words(QUESTION))
    assert prompt.passages == [] and prompt.dropped == 4
    assert user_message(prompt) == f"Evidence:\n\n\nQuestion: {QUESTION}"


def test_a_question_longer_than_half_the_budget_is_cut_to_fit():
    # 2,000 characters of "a- " were 2,000 tokens: the prompt overflowed the model's context (a 500).
    question = "a- " * 998 + "fee?"
    prompt = build_prompt(question, EVIDENCE, count_tokens=words, budget=200)
    asked = user_message(prompt).split("Question: ", 1)[1]
    assert words(asked) <= 100 and asked.endswith(" …") and asked.startswith("a- a- ")
    assert prompt.passages  # the evidence still has its room


def test_fitted_keeps_the_longest_start_that_fits():
    assert fitted("one two three four", words, 10) == "one two three four"
    assert fitted("one two three four", words, 3) == "one two …"


@pytest.mark.parametrize(
    "question, history, expected",
    [
        (
            "and what about the silver card?",
            ["What is the annual fee of the Gold card?"],
            "What is the annual fee of the silver card?",
        ),
        (
            "How about the Platinum card",
            ["Does the Gold card include insurance?"],
            "Does the Platinum card include insurance?",
        ),
        (
            "does it include insurance?",
            ["Tell me about the Gold card"],
            "does it include insurance? (follow-up to: Tell me about the Gold card)",
        ),
        (
            "How do I change my PIN at a cash machine?",
            ["What is the Gold card fee?"],
            "How do I change my PIN at a cash machine?",
        ),
        ("and what about the silver card?", [], "and what about the silver card?"),
    ],
)
def test_it_makes_follow_up_questions_standalone(question, history, expected):
    from generation.prompts import standalone_question

    assert standalone_question(question, history) == expected


def test_a_hostile_follow_up_is_quick_and_taken_literally():
    import time

    from generation.prompts import standalone_question

    started = time.perf_counter()
    standalone_question("what about x" + " " * 1985 + "a", ["What is the annual fee of the Gold card?"])
    assert time.perf_counter() - started < 0.5  # was about 6 s of backtracking
    assert (
        standalone_question("what about the \\1 card?", ["What is the fee of the Gold card?"])
        == "What is the fee of the \\1 card?"
    )
    assert (
        standalone_question("what about the \\g<x> card?", ["What is the fee of the Gold card?"])
        == "What is the fee of the \\g<x> card?"
    )
