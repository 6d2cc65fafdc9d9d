"""Answer examples for fine-tuning the generator, after RAFT (Zhang et al.
2024). Pure: no Django; the pipeline passes in the retrieved distractors.

- A *fact* is a sentence of a training passage that states a number (an
  amount, a limit, a duration, a version...), as the answer path's evidence
  units cut it (generation/evidence.py), with the text it leans on.
- Its *questions*: one the generator model writes (the retriever pipeline's
  writer and filters) and a keyword one made without a model, in the style
  of what people type into a search box: what the sentence is about (its
  label, such as a setting's name, or its heading) and the words that lead
  to the number ("work_mem default value?", "Annual fee cost?"). A cloze
  question (the sentence up to its number) was tried first: the model
  learned to echo the question and invent the rest (docs/BENCHMARKS.md).
  A number that refers to a section, a chapter or a version is no fact.
- An *answer* example puts the fact among distractor evidence (what the
  serving retriever and the evidence selection bring for the question, with
  anything holding the fact's numbers removed) at a random position; its
  target states the fact in the sentence's own words and cites its number.
  The target must pass the product's own answer policy (generation/policy:
  every sentence verified against the evidence it cites), or the example is
  dropped.
- An *absent* example (a share set in settings) gives only the distractors,
  the fact and any text holding its numbers removed; its target is the
  product's "not in the documents" answer.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from generation import evidence
from generation.claims import values as number_values
from generation.evaluation import holds
from generation.policy import GENERATED, NOT_FOUND_ANSWER, Item, decide, flatten
from generation.prompts import EvidenceLine
from retrieval.finetune.styled import STOPWORDS

ANSWER, ABSENT = "answer", "absent"
LLM, KEYWORD = "llm", "keyword"
RANDOM, RANKED = "random", "ranked"  # where the fact goes among the distractors
MIN_FACT_CHARS = 30
MAX_FACT_CHARS = 320
_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
_REFERENCE = re.compile(
    r"\b(?:sections?|chapters?|tables?|figures?|examples?|appendix|appendices|parts?|rfc|version|releases?|pages?|"
    r"steps?|items?|notes?)\s*[(\[]?$",
    re.I,
)
_LABEL_NOISE = re.compile(r"\((?:[`\w\s,]*)\)|[`*\u2026\u2014]|\.\.\.")
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class Fact:
    chunk_id: int
    document_id: int
    title: str
    heading: str
    sentence: str  # the fact-bearing sentence, on one line
    text: str  # the evidence unit: the sentence with what it leans on (a table header, a label)
    values: tuple[str, ...]  # its numbers as written: what a right answer holds

    @property
    def line(self) -> EvidenceLine:
        return EvidenceLine(self.text, self.heading)

    @property
    def context(self) -> str:
        return " ".join(part for part in (self.title, self.heading) if part)


@dataclass(frozen=True)
class Question:
    text: str
    fact: Fact
    method: str  # LLM or KEYWORD


@dataclass
class Example:
    kind: str  # ANSWER or ABSENT
    method: str
    question: str
    evidence: list[EvidenceLine]  # in prompt order
    target: str
    gold: int | None  # index of the fact in `evidence` (None when absent)
    chunk_id: int  # the fact's
    evidence_chunks: tuple[int, ...]  # the chunk of each evidence line
    document_ids: tuple[int, ...]  # every document the example's text comes from

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "method": self.method,
            "question": self.question,
            "evidence": [{"text": line.text, "heading": line.heading} for line in self.evidence],
            "target": self.target,
            "gold": self.gold,
            "chunk_id": self.chunk_id,
            "evidence_chunks": list(self.evidence_chunks),
            "document_ids": list(self.document_ids),
        }


@dataclass
class Drops:
    """What the filters dropped, by reason (for the report)."""

    counts: Counter = field(default_factory=Counter)

    def note(self, reason: str) -> None:
        self.counts[reason] += 1

    def as_dict(self) -> dict:
        return dict(sorted(self.counts.items()))


def _significant(sentence: str) -> tuple[str, ...]:
    """The numbers worth asking for, in order: not a reference ("see Section
    23.6"), and a lone digit ("1 card") only when nothing else is there."""
    found, position = [], 0
    for value in number_values(sentence):
        where = sentence.find(value, position)
        position = where + len(value)
        if not _REFERENCE.search(sentence[:where].rstrip()):
            found.append(value)
    longer = [v for v in found if len(v.replace(",", "").replace(".", "")) > 1]
    return tuple(dict.fromkeys(longer or found))


def facts(passages, per_passage: int = 1) -> list[Fact]:
    """Fact-bearing sentences of retrieval.finetune.data.Passage items, at most
    `per_passage` each (the first ones: a passage's opening facts are its own)."""
    found = []
    for passage in passages:
        units = evidence.units([evidence.Passage(passage.text, passage.title, passage.heading)])
        kept = 0
        for unit in units:
            sentence = flatten(_LIST_MARK.sub("", passage.text[unit.start : unit.end]))
            if not MIN_FACT_CHARS <= len(sentence) <= MAX_FACT_CHARS or not is_prose(sentence):
                continue
            values = _significant(sentence)
            if not values:
                continue
            found.append(
                Fact(
                    passage.chunk_id,
                    passage.document_id,
                    passage.title,
                    passage.heading,
                    sentence,
                    flatten(unit.text),
                    values,
                )
            )
            kept += 1
            if kept >= per_passage:
                break
    return found


def is_prose(sentence: str) -> bool:
    """A sentence of running text, not code, a table row or a command line:
    it opens with a capital letter (or a quoted name) and ends with a full
    stop, and few of its characters are code punctuation."""
    code = sum(sentence.count(c) for c in "=<>{}[]|\\#;$^~")
    words = _WORD.findall(sentence)
    return (
        (sentence[:1].isupper() or sentence[:1] == "`")
        and sentence.rstrip().endswith(".")
        and code <= 1
        and len(words) >= 5
    )


def subject(fact: Fact) -> str:
    """What the fact is about: the label its evidence unit leans on (a
    setting's name, a defined term), else its heading's last part."""
    where = fact.text.find(fact.sentence)
    label = _LABEL_NOISE.sub(" ", fact.text[:where] if where > 0 else "")
    label = " ".join(label.split()).strip(" -:")
    if 0 < len(label) <= 60:
        return label
    return fact.heading.split(" > ")[-1].strip()


def keyword_question(fact: Fact) -> str | None:
    """The subject and the content words that lead to the fact's first
    number ("work_mem default value?"); None when either is missing."""
    about = subject(fact)
    where = fact.sentence.find(fact.values[0])
    lead = [w for w in _WORD.findall(fact.sentence[: max(0, where)]) if w.lower() not in STOPWORDS]
    lead = [w for w in lead if w.lower() not in about.lower()][-3:]
    if not about or not lead:
        return None
    return f"{about} {' '.join(lead).lower()}?"


def answer_target(fact: Fact, number: int) -> str:
    """The fact in its own words, cited: "The fee is 95 euros [2]."."""
    body = fact.sentence.rstrip()
    stripped = body.rstrip(".!;:")
    return f"{stripped} [{number}]."


def arrange(
    question: Question,
    distractors: Sequence[tuple[EvidenceLine, int, int]],
    *,
    kind: str,
    items: int,
    rng: random.Random,
    drops: Drops,
    salient=frozenset(),
    positions: str = "random",
) -> Example | None:
    """An example for `question`: `distractors` are (line, document id, chunk
    id) best first, as the answer path found them; `items` how many evidence
    lines the prompt holds. Anything holding the fact's numbers is no
    distractor; an absent example has nothing of the fact's passage either.
    `positions`: RANDOM puts the fact at a random place among the
    distractors (RAFT's recipe); RANKED keeps the answer path's order, the
    fact where the evidence selection ranked it (last when it was not
    selected)."""
    fact = question.fact
    ranked = next((i for i, (line, _, _) in enumerate(distractors) if flatten(line.text) == fact.text), None)
    others = [
        (line, document_id, chunk_id)
        for line, document_id, chunk_id in distractors
        if flatten(line.text) != fact.text and not holds(line.text, fact.values)
    ]
    if kind == ABSENT:
        chosen = [other for other in others if other[2] != fact.chunk_id][:items]
        if not chosen:
            drops.note("absent_without_distractors")
            return None
        if positions == RANDOM:
            rng.shuffle(chosen)
        return _example(ABSENT, question, chosen, NOT_FOUND_ANSWER, None)
    chosen = others[: items - 1]
    if positions == RANDOM:
        rng.shuffle(chosen)
        place = rng.randrange(len(chosen) + 1)
    else:
        place = len(chosen) if ranked is None else min(ranked, len(chosen))
    chosen.insert(place, (fact.line, fact.document_id, fact.chunk_id))
    gold = next(i for i, (line, _, _) in enumerate(chosen) if line == fact.line)
    target = answer_target(fact, gold + 1)
    # The answer policy's own check, as it would judge this answer to this prompt.
    items = [Item(line.text, line.heading, 1.0) for line, _, _ in chosen]
    decision = decide(target, question.text, items, salient=salient)
    if decision.kind != GENERATED or decision.cited != [gold]:
        drops.note("target_unverified")
        return None
    return _example(ANSWER, question, chosen, target, gold)


def _example(kind: str, question: Question, chosen: list, target: str, gold: int | None) -> Example:
    return Example(
        kind,
        question.method,
        question.text,
        [line for line, _, _ in chosen],
        target,
        gold,
        question.fact.chunk_id,
        tuple(chunk for _, _, chunk in chosen),
        tuple(sorted({document for _, document, _ in chosen})),
    )


def choose_kinds(count: int, absent_share: float, seed: int) -> list[str]:
    """ABSENT for round(absent_share * count) of `count` questions (seeded), ANSWER for the rest."""
    absent = round(max(0.0, min(1.0, absent_share)) * count)
    kinds = [ABSENT] * absent + [ANSWER] * (count - absent)
    random.Random(seed).shuffle(kinds)
    return kinds


def counts_by_kind(examples: Sequence[Example]) -> dict:
    return dict(sorted(Counter(f"{e.kind}/{e.method}" for e in examples).items()))
