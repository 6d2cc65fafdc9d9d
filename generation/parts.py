"""Questions of several parts, answered part by part. Pure.

"How do I report a lost card and how long does a replacement take?" asks two
things; an answer made for one of them declined the whole question when the
evidence for the other was weak, or answered only one. Here the question is
split into its parts (`split`), each part gets its own evidence and its own
decision (generation/gathering.py, as a one-part question does), and the
answer is composed (`compose`): one checked statement per part, each with its
citation, as a list; a part the documents do not answer is said so in place
while the rest is answered.

The statements are the evidence's own words (generation/policy.py's quotes),
not the model's: SmolLM2-135M verifies on about one answer in ten, and a
composed answer needs every part right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generation.claims import terms
from generation.evidence import QUESTION_WORDS
from generation.policy import QUOTED, Decision, Item, Numbering, quote_block

MAX_PARTS = 4
# What opens a question: the word after "and" (or "?") that starts a second one.
_ASKS = (
    r"(?:how|what|whats|what's|when|where|which|who|whom|why|is|are|was|were|can|could|do|does|did|will|would|"
    r"should|must|may|shall|has|have)"
)
_JOIN = re.compile(rf"(?:\?\s+|\s*[;,]?\s+(?:and|also|plus)\s+(?:also\s+)?|\s*;\s*)(?={_ASKS}\b)", re.I)


def split(question: str) -> list[str]:
    """The question's parts, each a question of its own ("…card?", "how long
    does a replacement take?"); one part when it asks one thing. A piece
    naming nothing of its own ("and how?") stays with the part before."""
    pieces = [p.strip(" ,;") for p in _JOIN.split(" ".join(question.split())) if p and p.strip(" ,;?")]
    parts: list[str] = []
    for piece in pieces:
        if parts and not _content(piece):
            parts[-1] = f"{parts[-1].rstrip('?')} {piece}"
            continue
        parts.append(piece)
    if len(parts) < 2 or len(parts) > MAX_PARTS:
        return [" ".join(question.split())]
    return [part if part.endswith("?") else part.rstrip(".!") + "?" for part in parts]


_REFERS_BACK = re.compile(r"\b(?:it|its|it's|they|them|their|this|that|these|those|one|ones)\b", re.I)


def standalone(parts: list[str]) -> list[str]:
    """Each part as it is searched and scored: a later part that refers back
    ("what is its default?") carries the first part's subject words."""
    first = " ".join(w for w in parts[0].rstrip("?").split() if _content(w))
    return [parts[0]] + [f"{part} ({first})" if first and _REFERS_BACK.search(part) else part for part in parts[1:]]


def _content(text: str) -> set[str]:
    return {t for t in terms(text) if t not in QUESTION_WORDS}


@dataclass(frozen=True)
class Part:
    """One part of a question with its decided evidence."""

    question: str  # as the user asked it
    items: list[Item]  # its evidence, best first (the first is quoted); empty when it is not answered
    answers: bool
    wants: str = "any"  # the kind of value it asks for (evidence.Profile.wants)


UNANSWERED = "The documents do not answer this part."
NOTICE = "Your question has several parts: each is answered from the documents' own words, with its source."


def compose(parts: list[Part]) -> Decision:
    """The answer to every part, as a list in the question's order: the part,
    then its statement quoted with its citation, or that the documents do not
    answer it. Items are numbered across the parts, one number per passage
    (policy.Numbering). `cited` and `spans` index the items of all parts in
    order (the first item of each answered part)."""
    items = [part.items[0] for part in parts if part.answers and part.items]
    number = Numbering(items)
    lines, spans, cited = [], {}, []
    answer_length = 0
    index = 0
    for part in parts:
        head = f"- **{_sentence_case(part.question)}** "
        if part.answers and part.items:
            body, block = quote_block(items[index], number(index), part.wants)
            if block:  # a table: under the item, indented so that it stays inside it
                body = "\n\n" + "\n".join("  " + line for line in body.splitlines())
            line = head + body
            start = answer_length + (1 if lines else 0) + len(head)
            spans[index] = [(start, start + len(body))]
            cited.append(index)
            index += 1
        else:
            line = head + UNANSWERED
        answer_length += (1 if lines else 0) + len(line)
        lines.append(line)
    answer = "\n".join(lines)
    return Decision(QUOTED, answer, cited, spans, numbers=number.numbers)


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]
