"""generation/prompts.py: numbered passages within the context budget."""

import pytest

from generation.prompts import SYSTEM_PROMPT, PromptPassage, build_prompt


def words(text: str) -> int:
    return len(text.split())


QUESTION = "What is the annual fee of the Gold card?"
PASSAGES = [
    PromptPassage("The Gold card has an annual fee of 95 euros.", title="Handbook", page=2),
    PromptPassage("The Silver card has no annual fee.", title="Handbook", page=2),
    PromptPassage("The Platinum card includes travel insurance.", title="Handbook", page=3),
    PromptPassage("Cards are issued within five days.", title="FAQ"),
]


def fixed_cost(question: str) -> int:
    return words(SYSTEM_PROMPT) + words(f"Passages:\n\nQuestion: {question}") + 16


def passage_cost(number: int, passage: PromptPassage) -> int:
    return words(f"[{number}] {passage.text}") + 2


def user_message(prompt) -> str:
    (user,) = [m["content"] for m in prompt.messages if m["role"] == "user"]
    return user


def test_it_builds_a_system_and_a_user_message():
    prompt = build_prompt(QUESTION, PASSAGES, count_tokens=words, budget=10_000)
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert prompt.messages[0]["content"] == SYSTEM_PROMPT


def test_it_numbers_passages_in_order_from_one():
    prompt = build_prompt(QUESTION, PASSAGES, count_tokens=words, budget=10_000)
    assert prompt.passages == PASSAGES and prompt.dropped == 0
    user = user_message(prompt)
    positions = [user.index(f"[{n}] {p.text}") for n, p in enumerate(PASSAGES, start=1)]
    assert positions == sorted(positions)
    assert "[5]" not in user and "[0]" not in user
    assert user.startswith("Passages:\n[1] The Gold card")


def test_it_puts_the_stripped_question_after_the_passages():
    prompt = build_prompt(f"  {QUESTION}\n", PASSAGES, count_tokens=words, budget=10_000)
    user = user_message(prompt)
    assert user.endswith(f"\n\nQuestion: {QUESTION}")
    assert user.index("Question:") > user.index("[4]")


def test_it_collapses_whitespace_and_leaves_titles_and_pages_out_of_the_prompt():
    passage = PromptPassage("Line one\n\n   line   two\tend.", title="Secret Title", page=42)
    user = user_message(build_prompt(QUESTION, [passage], count_tokens=words, budget=10_000))
    assert "[1] Line one line two end." in user
    assert "Secret Title" not in user and "42" not in user


@pytest.mark.parametrize("kept", [0, 1, 2, 3, 4])
def test_it_drops_the_lowest_ranked_passages_whole_when_over_budget(kept):
    budget = fixed_cost(QUESTION) + sum(passage_cost(n, p) for n, p in enumerate(PASSAGES[:kept], start=1))
    prompt = build_prompt(QUESTION, PASSAGES, count_tokens=words, budget=budget)
    assert prompt.passages == PASSAGES[:kept]
    assert prompt.dropped == len(PASSAGES) - kept
    user = user_message(prompt)
    for passage in PASSAGES[kept:]:
        assert passage.text not in user  # dropped whole, never truncated
    assert QUESTION in user


def test_it_drops_one_token_short_of_fitting():
    budget = fixed_cost(QUESTION) + passage_cost(1, PASSAGES[0]) + passage_cost(2, PASSAGES[1]) - 1
    prompt = build_prompt(QUESTION, PASSAGES, count_tokens=words, budget=budget)
    assert prompt.passages == PASSAGES[:1] and prompt.dropped == 3


def test_it_stops_at_the_first_passage_that_does_not_fit():
    # A later, smaller passage is not promoted over a larger, better-ranked one.
    passages = [PromptPassage("short one."), PromptPassage("a much longer passage " * 20), PromptPassage("tiny.")]
    budget = fixed_cost(QUESTION) + passage_cost(1, passages[0]) + passage_cost(2, passages[2])
    prompt = build_prompt(QUESTION, passages, count_tokens=words, budget=budget)
    assert prompt.passages == passages[:1]
    assert prompt.dropped == 2


def test_it_still_asks_the_question_when_no_passage_fits():
    prompt = build_prompt(QUESTION, PASSAGES, count_tokens=words, budget=1)
    assert prompt.passages == [] and prompt.dropped == 4
    assert user_message(prompt) == f"Passages:\n\n\nQuestion: {QUESTION}"


def test_it_handles_no_passages():
    prompt = build_prompt(QUESTION, [], count_tokens=words, budget=10_000)
    assert prompt.passages == [] and prompt.dropped == 0
    assert QUESTION in user_message(prompt)


@pytest.mark.parametrize(
    "question, history, expected",
    [
        ("and what about the silver card?", ["What is the annual fee of the Gold card?"], "What is the annual fee of the silver card?"),
        ("How about the Platinum card", ["Does the Gold card include insurance?"], "Does the Platinum card include insurance?"),
        ("does it include insurance?", ["Tell me about the Gold card"], "does it include insurance? (follow-up to: Tell me about the Gold card)"),
        ("How do I change my PIN at a cash machine?", ["What is the Gold card fee?"], "How do I change my PIN at a cash machine?"),
        ("and what about the silver card?", [], "and what about the silver card?"),
    ],
)
def test_it_makes_follow_up_questions_standalone(question, history, expected):
    from generation.prompts import standalone_question

    assert standalone_question(question, history) == expected
