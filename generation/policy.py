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
from generation.claims import abstains, terms, verify
from generation.evidence import holds_wanted

GENERATED, QUOTED, NOT_FOUND, REFUSED = "generated", "quoted", "not_found", "refused"
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


@dataclass
class Decision:
    kind: str
    answer: str  # with our [n] markers, numbered by first use
    cited: list[int]  # evidence indexes (0-based) in the order of their display numbers
    spans: dict[int, list[tuple[int, int]]]  # evidence index -> spans of `answer` it supports
    reason: str = ""  # why the generated text was not shown
    checks: list[dict] = field(default_factory=list)  # per generated sentence: text, evidence, reasons


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
        return _quote(items, reason, checks, quote_margin, quote_chars)
    return _render(checks)


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


def _render(checks: list[dict]) -> Decision:
    numbers: dict[int, int] = {}
    spans: dict[int, list[tuple[int, int]]] = {}
    parts, length = [], 0
    for check in checks:
        index = check["evidence"]
        number = numbers.setdefault(index, len(numbers) + 1)
        body = check["text"]
        stripped = body.rstrip(".!?\"')]")
        body = f"{stripped} [{number}]{body[len(stripped) :]}"
        start = length + (1 if parts else 0)
        parts.append(body)
        length = start + len(body)
        spans.setdefault(index, []).append((start, length))
    cited = sorted(numbers, key=numbers.get)
    return Decision(GENERATED, " ".join(parts), cited, spans, checks=checks)


def _quote(items: list[Item], reason: str, checks: list[dict], quote_margin: float, quote_chars: int) -> Decision:
    """The best evidence, quoted exactly; the runner-up too when it scored
    almost as well and the two stay short."""
    chosen = [0]
    if (
        len(items) > 1
        and items[1].score >= items[0].score - quote_margin
        and len(items[0].text) + len(items[1].text) <= quote_chars
    ):
        chosen.append(1)
    parts, spans, length = [], {}, 0
    for number, index in enumerate(chosen, start=1):
        body = f"\u201c{flatten(items[index].text)}\u201d [{number}]"
        start = length + (1 if parts else 0)
        parts.append(body)
        length = start + len(body)
        spans[index] = [(start, length)]
    return Decision(QUOTED, " ".join(parts), chosen, spans, reason=reason, checks=checks)
