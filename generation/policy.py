"""The answer policy: what the user is shown. Pure.

Three outcomes, recorded with every answer (`kind`):

    generated   the model's text, every sentence of which verified against
                an evidence item we ranked as answering the question; each
                sentence is cited to that item;
    quoted      the model's text did not verify (a number, a name or a
                negation not in its evidence, no value where the question
                asks for one, "the documents do not say" although they do):
                the best evidence is quoted exactly instead, with citations,
                and the model's text is kept for audit only;
    not_found   no evidence answers the question (decided before any text
                is generated): the documents do not contain it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from generation.citations import split_sentences, strip_markers
from generation.claims import abstains, stated_values, terms, verify
from generation.evidence import holds_wanted

GENERATED, QUOTED, NOT_FOUND, REFUSED = "generated", "quoted", "not_found", "refused"
# An answer cut short: the asker stopped it, or it failed; its text so far, unchecked.
STOPPED, BROKEN = "stopped", "broken"
NOT_FOUND_ANSWER = "The documents do not contain an answer to that."


# What a question asks for (evidence.Profile.wants), as the not-found answer names it.
WANTED = {"amount": "amount", "percent": "rate", "duration": "time", "number": "number", "default": "default value"}


def not_found_answer(unknown: tuple[str, ...] = (), closest: bool = False, lacks: str = "") -> str:
    """What the asker reads when the documents do not answer: what they do
    not mention, when the question named it, or the kind of value asked for
    that no evidence states (gate.lacking), and where the closest passages are."""
    answer = NOT_FOUND_ANSWER
    if unknown:
        listed = unknown[0] if len(unknown) == 1 else f"{', '.join(unknown[:-1])} or {unknown[-1]}"
        answer = f"The documents do not mention {listed}, so they do not answer that."
    elif lacks in WANTED:
        answer = f"The documents do not state the {WANTED[lacks]} you asked for."
    return answer + (" The closest passages are listed below." if closest else "")


QUOTE_NOTICE = "The generated answer could not be checked against the documents, so their own words are quoted instead."


_LINE_BREAK = re.compile(r"\s*\n\s*")
_BULLET = re.compile(r"(?:[-*•]|\d{1,2}[.)])\s+")


def flatten(text: str) -> str:
    """The quoted text on one line: a heading-like line ("Payment limits")
    keeps a dash before the sentence it titles; other breaks become spaces."""

    def join(match):
        before, after = text[: match.start()].rstrip()[-1:], text[match.end() : match.end() + 1]
        return " " if not before or before in ".!?:;,|…" or after[:1].islower() or after[:1].isdigit() else " \u2014 "

    return " ".join(_LINE_BREAK.sub(join, text.strip()).split())


@dataclass(frozen=True)
class Item:
    """One numbered piece of evidence: what the model read as [n]."""

    text: str
    context: str  # heading and title: where the text stands
    score: float
    title: str = ""  # the document's title (claims.verify: no subject of its own)
    quote: str = ""  # what a reader is shown of it: without the lead the model reads ("": `text`)
    label: str = ""  # the heading or term it is about, shown before the quote
    header: str = ""  # a table row's header row: the row is quoted as a small table
    source: object = None  # its passage: items of one passage share one citation number (None: its own)


def item(unit, context: str, title: str, source) -> Item:
    """The policy's view of an evidence unit (generation.evidence.Unit)."""
    return Item(unit.text, context, unit.order, title, unit.quote, unit.label, unit.header, source)


@dataclass
class Decision:
    kind: str
    answer: str  # with our [n] markers, numbered by first use
    cited: list[int]  # evidence indexes (0-based) in the order of first use
    spans: dict[int, list[tuple[int, int]]]  # evidence index -> spans of `answer` it supports
    reason: str = ""  # why the generated text was not shown
    checks: list[dict] = field(default_factory=list)  # per generated sentence: text, evidence, reasons
    numbers: dict[int, int] = field(default_factory=dict)  # evidence index -> its [n] (one per passage)


class Numbering:
    """Citation numbers by first use, one per passage: two items of the same
    passage (Item.source) are one source to the reader, [1] for both."""

    def __init__(self, items: list[Item]):
        self.items = items
        self.by_source: dict[object, int] = {}
        self.numbers: dict[int, int] = {}

    def __call__(self, index: int) -> int:
        source = self.items[index].source
        key = ("item", index) if source is None else ("source", source)
        number = self.by_source.setdefault(key, len(self.by_source) + 1)
        self.numbers.setdefault(index, number)
        return number


def cite(text: str, number: int) -> str:
    """A sentence with its marker before its closing punctuation: "… 95 euros [1]."."""
    stripped = text.rstrip(".!?\"')]”")
    return f"{stripped} [{number}]{text[len(stripped) :]}"


def quote_block(item: Item, number: int, wants: str = "any", lead_value: bool = True) -> tuple[str, bool]:
    """How one item is quoted to a reader, and whether it is a block of its
    own (a table): a table row as a small table under its header row; other
    text within quotation marks, after the heading or term it is about; led
    by the value asked for when it states exactly one ("**95 euros** — “…”")."""
    quoted = (item.quote or item.text).strip()
    if bullet := _BULLET.match(quoted):  # a list item quoted alone goes without its bullet
        quoted = quoted[bullet.end() :]
    if item.header and quoted.startswith("|") and quoted.endswith("|") and "\n" not in quoted:
        columns = max(1, len(re.findall(r"(?<!\\)\|", item.header)) - 1)
        row = f"{quoted[:-1].rstrip()} [{number}] |"
        return "\n".join((item.header, "|" + "---|" * columns, row)), True
    body = f"\u201c{flatten(quoted)}\u201d [{number}]"
    if item.label and not terms(item.label) <= terms(quoted):  # what it is about, unless the quote names it
        body = f"**{item.label}**: {body}"
    values = stated_values(quoted, wants) if lead_value else []
    if len(values) == 1:
        body = f"**{values[0]}** \u2014 {body}"
    return body, False


def join_parts(parts: list[tuple[str, bool]]) -> tuple[str, list[tuple[int, int]]]:
    """The answer from its parts, and each part's span in it: prose parts
    joined by a space, a block (a table, a list) set apart by blank lines."""
    answer, spans = "", []
    for text, block in parts:
        if answer:
            answer += "\n\n" if block or (spans and answer.endswith("|")) else " "
        start = len(answer)
        answer += text
        spans.append((start, len(answer)))
    return answer, spans


def decide(
    generated: str,
    question: str,
    items: list[Item],
    *,
    wants: str = "any",
    salient=frozenset(),
    margin: float = 0.1,
    quote_margin: float = 0.1,
    quote_chars: int = 400,
) -> Decision:
    """`items` are best first; `wants` is the kind of value the question asks
    for; `salient` its rarest terms (claims.verify)."""
    if not items:
        return Decision(NOT_FOUND, NOT_FOUND_ANSWER, [], {})
    checks, reason = _verify_sentences(generated, question, items, margin, salient)
    if not reason:
        shown = " ".join(c["text"] for c in checks)
        if holds_wanted(shown, wants) is False:
            reason = f"the answer states no {wants} although the question asks for one"
    if reason:
        return _quote(items, reason, checks, quote_margin, quote_chars, wants)
    return _render(checks, items)


def _verify_sentences(generated: str, question: str, items: list[Item], margin: float, salient):
    clean, markers = strip_markers(generated.strip())
    lead = len(clean) - len(clean.lstrip())
    clean = clean.strip()
    if not clean:
        return [], "the model gave no answer"
    if abstains(clean):
        return [], "the model said the documents do not answer, but the evidence does"
    strong = [i for i, item in enumerate(items) if item.score >= items[0].score - margin]
    checks = []
    for start, end in split_sentences(clean):
        sentence = clean[start:end]
        claimed = [
            n - 1
            for pos, numbers in markers
            for n in numbers
            if start <= max(0, pos - lead) <= end + 1 and 1 <= n <= len(items)
        ]
        words = terms(sentence)
        # The item the model named first, then the others by the words they share.
        order = list(
            dict.fromkeys(claimed + sorted(range(len(items)), key=lambda i: -len(words & terms(items[i].text))))
        )
        chosen, reasons = None, []
        for index in order:
            item = items[index]
            result = verify(sentence, item.text, question, item.context, salient, item.title)
            if result.ok and index in strong:
                chosen = index
                break
            if index in claimed or not reasons:
                reasons = list(result.reasons) or [f"evidence [{index + 1}] scored too low to answer the question"]
        checks.append({"text": sentence, "evidence": chosen, "reasons": [] if chosen is not None else reasons})
    failed = [c for c in checks if c["evidence"] is None]
    if failed:
        return checks, f'unverified: "{failed[0]["text"][:120]}" ({"; ".join(failed[0]["reasons"])})'
    return checks, ""


def _render(checks: list[dict], items: list[Item]) -> Decision:
    number = Numbering(items)
    parts = [(cite(check["text"], number(check["evidence"])), False) for check in checks]
    answer, part_spans = join_parts(parts)
    spans: dict[int, list[tuple[int, int]]] = {}
    for check, span in zip(checks, part_spans):
        spans.setdefault(check["evidence"], []).append(span)
    cited = list(dict.fromkeys(check["evidence"] for check in checks))
    return Decision(GENERATED, answer, cited, spans, checks=checks, numbers=number.numbers)


def _quote(
    items: list[Item], reason: str, checks: list[dict], quote_margin: float, quote_chars: int, wants: str = "any"
) -> Decision:
    """The best evidence, quoted exactly; the runner-up too when it scored
    almost as well and the two stay short."""
    chosen = [0]
    if (
        len(items) > 1
        and items[1].score >= items[0].score - quote_margin
        and len(items[0].text) + len(items[1].text) <= quote_chars
    ):
        chosen.append(1)
    number = Numbering(items)
    # The value asked for leads only a lone quote: beside a runner-up it may be the wrong one.
    alone = len(chosen) == 1
    answer, part_spans = join_parts([quote_block(items[index], number(index), wants, alone) for index in chosen])
    spans = {index: [span] for index, span in zip(chosen, part_spans)}
    return Decision(QUOTED, answer, chosen, spans, reason=reason, checks=checks, numbers=number.numbers)
