"""The RAG prompt: numbered evidence within the model's context budget; follow-up questions made standalone. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

SYSTEM_PROMPT = (
    "You answer questions from numbered evidence taken from the user's documents. "
    "Answer in one short sentence, using only the evidence. Copy numbers, amounts and names exactly as the evidence "
    "writes them. End the sentence with the number of the evidence it comes from, like [1]."
)


@dataclass(frozen=True)
class EvidenceLine:
    """One numbered item of the prompt: an evidence unit's text and its heading."""

    text: str
    heading: str = ""


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    passages: list[EvidenceLine]  # the items that fitted, in prompt order: [1] is passages[0]
    dropped: int


def _render(number: int, line: EvidenceLine) -> str:
    # Titles stay out of the prompt (the small default model copies them into
    # its answer); the heading says what a sentence is about.
    text = " ".join(line.text.split())
    return f"[{number}] ({line.heading}) {text}" if line.heading else f"[{number}] {text}"


QUESTION_SHARE = 0.5  # of the prompt's token budget


def fitted(text: str, count_tokens: Callable[[str], int], limit: int) -> str:
    """`text`, or its longest start that fits `limit` tokens followed by " …"."""
    if count_tokens(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits, by bisection (a dozen counts)
        middle = (low + high + 1) // 2
        if count_tokens(text[:middle].rstrip() + " …") <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + " …"


def build_prompt(
    question: str, evidence: list[EvidenceLine], *, count_tokens: Callable[[str], int], budget: int
) -> Prompt:
    """Messages for the chat template: the numbered evidence, best first. An
    item that does not fit what is left of the budget is skipped, never cut
    (a shorter one after it may still fit)."""
    # A question may take at most half the budget: any longer one (2,000
    # characters of "a-" are 2,000 tokens) overflowed the model's context.
    question = fitted(question.strip(), count_tokens, int(budget * QUESTION_SHARE))
    kept: list[EvidenceLine] = []
    used = count_tokens(SYSTEM_PROMPT) + count_tokens(f"Evidence:\n\nQuestion: {question}") + 16
    for line in evidence:
        cost = count_tokens(_render(len(kept) + 1, line)) + 2
        if used + cost > budget:
            continue
        kept.append(line)
        used += cost
    context = "\n".join(_render(i, line) for i, line in enumerate(kept, start=1))
    user = f"Evidence:\n{context}\n\nQuestion: {question.strip()}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    return Prompt(messages=messages, passages=kept, dropped=len(evidence) - len(kept))


MAX_FOLLOW_UP_CHARS = 300  # a longer question is taken as standalone
_FOLLOW_UP = re.compile(r"^\s*(?:and|but|also|so|then|what about|how about|what of|same for)\b", re.I)
_ABOUT = re.compile(r"^\s*(?:and|but|so)?\s*(?:what|how)\s+about\s+(.+?)\s*[?.!]*\s*$", re.I)
_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|that|this|those|these|one)\b", re.I)


def standalone_question(question: str, previous_questions: list[str]) -> str:
    """Rewrite a follow-up ("and what about the silver card?") into a question
    that stands alone, from the conversation's earlier questions; other
    questions pass unchanged. Deterministic: the small default model rewrites
    unreliably, and retrieval needs the earlier question's subject."""
    question = question.strip()
    if not previous_questions or len(question) > MAX_FOLLOW_UP_CHARS:
        return question
    previous = previous_questions[-1].strip()
    words = question.split()
    # One space between words: the patterns then cannot backtrack over runs of white space.
    about = _ABOUT.match(" ".join(words))
    if about:
        # Swap the earlier question's phrase that ends in the same noun: "the Gold card" -> "the silver card".
        replacement = about.group(1)
        head = re.escape(replacement.split()[-1])
        phrase = re.compile(rf"\b(?:(?:the|a|an|your|my|our)\s+)?(?:[\w-]+\s+){{0,2}}{head}\b", re.I)
        if phrase.search(previous):  # the user's words are text, never a replacement template ("\\1")
            return phrase.sub(lambda _match: replacement, previous, count=1)
    if _FOLLOW_UP.match(question) or (len(words) <= 8 and _PRONOUN.search(question)) or len(words) <= 3:
        return f"{question} (follow-up to: {previous})"
    return question
