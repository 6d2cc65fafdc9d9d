"""The RAG prompt: numbered passages within the model's context budget. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

SYSTEM_PROMPT = (
    "You are a careful assistant. Answer the question using only the numbered passages. "
    "Answer in one to three short sentences. "
    "If the passages do not contain the answer, say that the documents do not say."
)


@dataclass(frozen=True)
class PromptPassage:
    text: str
    title: str = ""
    page: int | None = None


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    passages: list[PromptPassage]  # those that fitted, in prompt order: [1] is passages[0]
    dropped: int


def _render(number: int, passage: PromptPassage) -> str:
    # Titles and pages stay out of the prompt: the small default model copies
    # them into its answer. Citations carry them instead.
    return f"[{number}] {' '.join(passage.text.split())}"


def build_prompt(question: str, passages: list[PromptPassage], *, count_tokens: Callable[[str], int], budget: int) -> Prompt:
    """Messages for the chat template. Passages come best first; the
    lowest-ranked ones are dropped whole when the budget would be exceeded."""
    kept: list[PromptPassage] = []
    fixed = count_tokens(SYSTEM_PROMPT) + count_tokens(f"Passages:\n\nQuestion: {question}") + 16
    used = fixed
    for passage in passages:
        cost = count_tokens(_render(len(kept) + 1, passage)) + 2
        if used + cost > budget:
            break
        kept.append(passage)
        used += cost
    context = "\n\n".join(_render(i, p) for i, p in enumerate(kept, start=1))
    user = f"Passages:\n{context}\n\nQuestion: {question.strip()}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    return Prompt(messages=messages, passages=kept, dropped=len(passages) - len(kept))


_FOLLOW_UP = re.compile(r"^\s*(?:and|but|also|so|then|what about|how about|what of|same for)\b", re.I)
_ABOUT = re.compile(r"^\s*(?:and|but|so)?\s*(?:what|how)\s+about\s+(.+?)\s*[?.!]*\s*$", re.I)
_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|that|this|those|these|one)\b", re.I)


def standalone_question(question: str, previous_questions: list[str]) -> str:
    """Rewrite a follow-up ("and what about the silver card?") into a question
    that stands alone, from the conversation's earlier questions; other
    questions pass unchanged. Deterministic: the small default model rewrites
    unreliably, and retrieval needs the earlier question's subject."""
    question = question.strip()
    if not previous_questions:
        return question
    previous = previous_questions[-1].strip()
    words = question.split()
    about = _ABOUT.match(question)
    if about:
        # Swap the earlier question's phrase that ends in the same noun: "the Gold card" -> "the silver card".
        replacement = about.group(1)
        head = re.escape(replacement.split()[-1])
        phrase = re.compile(rf"\b(?:(?:the|a|an|your|my|our)\s+)?(?:[\w-]+\s+){{0,2}}{head}\b", re.I)
        if phrase.search(previous):
            return phrase.sub(replacement, previous, count=1)
    if _FOLLOW_UP.match(question) or (len(words) <= 8 and _PRONOUN.search(question)) or len(words) <= 3:
        return f"{question} (follow-up to: {previous})"
    return question
