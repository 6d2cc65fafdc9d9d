"""Answers composed from several checked facts: questions of several parts,
answered part by part, and requests for a list or a comparison. Pure.

"How do I report a lost card and how long does a replacement take?" asks two
things; an answer made for one of them declined the whole question when the
evidence for the other was weak, or answered only one. Here the question is
split into its parts (`split`), each part gets its own evidence and its own
decision (generation/gathering.py, as a one-part question does), and the
answer is composed (`compose`): one checked statement per part, each with its
citation, as a list; a part the documents do not answer is said so in place
while the rest is answered.

A request for a list ("list the daily limits by channel") or a comparison
("compare the Gold and Platinum fees") is answered with every evidence item
that scores close to the best and states the kind of value asked for, one a
line (`compose_list`): as a table when they are rows of one table.

The statements are the evidence's own words (generation/policy.py's quotes),
not the model's: SmolLM2-135M verifies on about one answer in ten, and a
composed answer needs every part right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generation.claims import terms
from generation.evidence import QUESTION_WORDS, holds_wanted
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


def already_quoted(sentence: tuple, quoted: list[tuple]) -> bool:
    """Whether a part's sentence, (passage, start, end), lies within a quote
    an earlier part already shows, (passage, start, end) each: such a part
    is not answered by it ("does it include lounge access?" met the Gold
    card's fee again, the first part's quote); a new sentence next to an
    earlier one is ("what is its interest rate?")."""
    passage, start, end = sentence
    return any(passage == p and s <= start and end <= e for p, s, e in quoted)


UNANSWERED = "The documents do not answer this part."
NOTICE = "Your question has several parts: each is answered from the documents' own words, with its source."
LIST_NOTICE = "Each item is quoted from the documents, with its source."


def compose(parts: list[Part]) -> Decision:
    """The answer to every part, as a list in the question's order: the part,
    in italics, then its statement quoted with its citation, or that the documents do not
    answer it. Items are numbered across the parts, one number per passage
    (policy.Numbering). `cited` and `spans` index the items of all parts in
    order (the first item of each answered part)."""
    items = [part.items[0] for part in parts if part.answers and part.items]
    number = Numbering(items)
    lines, spans, cited = [], {}, []
    answer_length = 0
    index = 0
    for part in parts:
        head = f"- *{_markdown_safe(_sentence_case(part.question))}* "  # in italics: the answer's value is bold
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


_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|])")


def _markdown_safe(text: str) -> str:
    """The user's words as text inside our Markdown: its marks escaped."""
    return _MARKDOWN.sub(r"\\\1", text)


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- lists and comparisons ----------------------------------------------------------
_LIST_REQUEST = re.compile(
    r"\b(?:list|lists|listing|bullet(?:ed|s)?|bullet points|enumerate|itemi[sz]e|each|every|all (?:the|of the)|"
    r"compare|comparison|compared|versus|vs\.?|difference between|differences between)\b",
    re.I,
)
LIST_MARGIN = 0.15  # an item of a list scores at least the best item's evidence score less this
MAX_LIST_ITEMS = 8


def asks_for_list(question: str) -> bool:
    """Whether the question asks for a list or a comparison."""
    return bool(_LIST_REQUEST.search(question))


def list_items(items: list[Item], wants: str = "any", margin: float = LIST_MARGIN) -> list[int]:
    """The items that go in a list, best first: close to the best, and
    stating the kind of value asked for where one is (its indexes)."""
    if not items:
        return []
    best = items[0].score
    chosen: list[int] = []
    for i, item in enumerate(items):
        quoted = " ".join((item.quote or item.text).split()).casefold()
        if item.score < best - margin or holds_wanted(quoted, wants) is False:
            continue
        # An item another already quotes (a list's lead-in quotes its first item) is not repeated.
        if any(quoted in " ".join((items[j].quote or items[j].text).split()).casefold() for j in chosen):
            continue
        chosen.append(i)
    return (chosen or [0])[:MAX_LIST_ITEMS]


def compose_list(items: list[Item], wants: str = "any", margin: float = LIST_MARGIN) -> Decision:
    """The items as a list, one quoted item a line with its citation: a
    table under the shared header when they are rows of one table; the
    label they share said once before them."""
    chosen = list_items(items, wants, margin)
    number = Numbering(items)
    rows = [(items[i].quote or items[i].text).strip() for i in chosen]
    headers = {items[i].header for i in chosen}
    if len(chosen) > 1 and len(headers) == 1 and "" not in headers and all(_one_row(r) for r in rows):
        (header,) = headers
        columns = max(1, len(re.findall(r"(?<!\\)\|", header)) - 1)
        lines = [(header, False), ("|" + "---|" * columns, False)]
        lines += [(f"{row[:-1].rstrip()} [{number(i)}] |", False) for i, row in zip(chosen, rows)]
        answer, line_spans = _lines(lines)
        spans = {i: [span] for i, span in zip(chosen, line_spans[2:])}
        return Decision(QUOTED, answer, chosen, spans, numbers=number.numbers)
    labels = {items[i].label for i in chosen}
    shared = labels.pop() if len(labels) == 1 else ""
    parts = [(f"**{shared}**:", False)] if shared and len(chosen) > 1 else []
    for i in chosen:
        item = items[i] if len(chosen) == 1 or not shared else _without_label(items[i])
        body, block = quote_block(item, number(i), wants, lead_value=len(chosen) == 1)
        if block:
            body = "\n".join("  " + line for line in body.splitlines()).lstrip()
        parts.append((f"- {body}" if len(chosen) > 1 else body, len(chosen) > 1))
    answer, part_spans = _lines(parts)
    offset = 1 if parts and parts[0][0].startswith("**") and len(chosen) > 1 else 0
    spans = {i: [part_spans[n + offset]] for n, i in enumerate(chosen)}
    return Decision(QUOTED, answer, chosen, spans, numbers=number.numbers)


def _one_row(text: str) -> bool:
    return text.startswith("|") and text.endswith("|") and "\n" not in text


def _without_label(item: Item) -> Item:
    from dataclasses import replace

    return replace(item, label="")


def _lines(parts: list[tuple[str, bool]]) -> tuple[str, list[tuple[int, int]]]:
    """Parts one a line (a Markdown list), and each part's span."""
    answer, spans = "", []
    for text, _ in parts:
        if answer:
            answer += "\n"
        spans.append((len(answer), len(answer) + len(text)))
        answer += text
    return answer, spans
