"""Answer-quality metrics over labelled questions. Pure: no Django.

A labelled file is JSON lines, one question each:

    {"id": "demo-001", "question": "...", "answers": ["95 euros", "95 EUR"],
     "document": "card-handbook.pdf", "answerable": true}
    {"id": "demo-050", "question": "...", "answerable": false}

An answer *holds the fact* when one of the accepted strings occurs in it
(case-folded, white space and typographic quotes normalised). The measures:

    holds_fact        answerable questions whose shown answer holds the fact
    cited_holds_fact  ... and one of its citations quotes a passage holding it
    wrong_cited       answerable questions answered without the fact, yet
                      with a citation (the harm this product must avoid)
    abstained         unanswerable questions answered "not in the documents"
                      (found false)
    unanswerable_cited  unanswerable questions answered with a citation
    false_abstention  answerable questions answered "not in the documents"
    latency p50/p90   seconds per answer, as the answer path measured it
    parts_right       questions of several parts (a "parts" list: the accepted
                      strings of each part) whose answer holds every part
    shown_as_list     list and comparison requests (kind "list" or
                      "comparison") answered as a Markdown list or table

A question may name its `kind` (single, two_part, list, comparison;
unanswerable ones default to "unanswerable"): the summary also gives the
measures per kind. Every question is in the dev or the test part of its set,
by a hash of its id (`split_of`): tune on dev, report test only.

Where the fact was lost (answerable questions, for the diagnosis the issue
asks for): in the retrieved passages, in the evidence given to the model, in
the model's own text, in what was shown.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from retrieval.evaluation import LabelError, json_objects  # noqa: F401 (LabelError: the error callers catch)

_SPACE = re.compile(r"\s+")
_FOLD = str.maketrans(
    {"\u00a0": " ", "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)


@dataclass(frozen=True)
class LabelledQuestion:
    id: str
    question: str
    answerable: bool
    answers: tuple[str, ...] = ()
    document: str = ""
    kind: str = "single"  # single | two_part | list | comparison | unanswerable
    parts: tuple[tuple[str, ...], ...] = ()  # for a question of several parts: each part's accepted strings

    @property
    def split(self) -> str:
        return split_of(self.id)


SPLITS = ("dev", "test")


def split_of(question_id: str) -> str:
    """The part of its set a question is in: "dev" (tune on it) or "test"
    (report only), half each, fixed by its id so no run can move one."""
    return SPLITS[int(hashlib.sha256(question_id.encode()).hexdigest()[:8], 16) % 2]


def in_split(questions: list[LabelledQuestion], split: str | None) -> list[LabelledQuestion]:
    """The questions of one part ("dev" or "test"; None or "all": every one)."""
    if split in (None, "all"):
        return list(questions)
    if split not in SPLITS:
        raise LabelError(f"unknown split {split!r}: dev, test or all")
    return [q for q in questions if q.split == split]


@dataclass(frozen=True)
class Outcome:
    """What the answer path did for one question (taken from its result)."""

    answer: str
    found: bool
    kind: str
    cited_quotes: tuple[str, ...]
    cited_files: tuple[str, ...]
    passages: tuple[str, ...] = ()  # retrieved passages' texts
    evidence: tuple[str, ...] = ()  # what the model was given
    generated: str = ""  # the model's own text (shown or not)
    seconds: float = 0.0
    confidence: float | None = None  # the gate's probability that the documents answer (what "found" is decided on)


def parse_questions(lines: Iterable[str], source: str = "questions") -> list[LabelledQuestion]:
    questions, seen = [], set()
    for where, item in json_objects(lines, source, "question"):
        answerable = item.get("answerable", True)
        if not isinstance(answerable, bool):
            raise LabelError(f"{where}: answerable must be true or false")
        parts = item.get("parts", [])
        if not isinstance(parts, list) or not all(
            isinstance(part, list) and part and all(isinstance(a, str) and a.strip() for a in part) for part in parts
        ):
            raise LabelError(f"{where}: parts must be a list of lists of answer strings")
        answers = item.get("answers", []) or [a for part in parts for a in part]
        if answerable and (
            not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers)
        ):
            raise LabelError(f"{where}: an answerable question needs a non-empty list of answer strings")
        qid = str(item.get("id") or where)
        if qid in seen:
            raise LabelError(f"{where}: duplicate id {qid}")
        seen.add(qid)
        questions.append(
            LabelledQuestion(
                qid,
                item["question"].strip(),
                answerable,
                tuple(answers) if answerable else (),
                str(item.get("document", "")),
                str(item.get("kind") or ("single" if answerable else "unanswerable")),
                tuple(tuple(part) for part in parts),
            )
        )
    if not questions:
        raise LabelError(f"{source}: no questions")
    return questions


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.translate(_FOLD).casefold()).strip()


def holds(text: str, answers: Iterable[str]) -> bool:
    """An accepted string occurs in `text` as a whole: "50 euros" is not in "250 euros"."""
    text = normalise(text)
    return any(re.search(rf"(?<![0-9a-z]){re.escape(normalise(answer))}(?![0-9a-z])", text) for answer in answers)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def judge(question: LabelledQuestion, outcome: Outcome) -> dict:
    """Per-question verdicts (booleans), the row of the JSON report."""
    row = {
        "id": question.id,
        "question": question.question,
        "answerable": question.answerable,
        "answer": outcome.answer,
        "kind": outcome.kind,
        "found": outcome.found,
        "cited": bool(outcome.cited_quotes),
        "seconds": round(outcome.seconds, 3),
        "confidence": outcome.confidence,
        "generated": outcome.generated,  # the model's own text, shown or not (for the diagnosis)
    }
    row["kind_asked"] = question.kind
    row["split"] = question.split
    if question.kind in ("list", "comparison"):
        row["shown_as_list"] = bool(_LIST_OR_TABLE.search(outcome.answer))
    if question.answerable:
        shown = holds(outcome.answer, question.answers)
        if question.parts:
            row["parts_right"] = all(holds(outcome.answer, part) for part in question.parts)
            shown = row["parts_right"]  # a question of several parts holds the fact when it holds every part
        row.update(
            holds_fact=shown,
            cited_holds_fact=shown and any(holds(q, question.answers) for q in outcome.cited_quotes),
            gold_cited=bool(question.document) and question.document in outcome.cited_files,
            wrong_cited=not shown and bool(outcome.cited_quotes),
            false_abstention=not outcome.found,
            in_passages=any(holds(p, question.answers) for p in outcome.passages),
            in_evidence=any(holds(e, question.answers) for e in outcome.evidence),
            in_generated=holds(outcome.generated, question.answers),
        )
    else:
        row.update(abstained=not outcome.found, cited_anyway=outcome.found and bool(outcome.cited_quotes))
    return row


_LIST_OR_TABLE = re.compile(r"^\s*(?:[-*+]|\d{1,2}[.)])\s+\S|^\s*\|.*\|\s*$", re.M)


def summarise(rows: list[dict], *, by_kind: bool = True) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def share(items, key):
        return round(sum(bool(r[key]) for r in items) / len(items), 3) if items else None

    seconds = [r["seconds"] for r in rows]
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "holds_fact": share(answerable, "holds_fact"),
        "cited_holds_fact": share(answerable, "cited_holds_fact"),
        "gold_cited": share(answerable, "gold_cited"),
        "wrong_cited": share(answerable, "wrong_cited"),
        "false_abstention": share(answerable, "false_abstention"),
        "abstained": share(unanswerable, "abstained"),
        "unanswerable_cited": share(unanswerable, "cited_anyway"),
        "fact_in_passages": share(answerable, "in_passages"),
        "fact_in_evidence": share(answerable, "in_evidence"),
        "fact_in_generated": share(answerable, "in_generated"),
        "parts_right": share([r for r in answerable if "parts_right" in r], "parts_right"),
        "shown_as_list": share([r for r in rows if "shown_as_list" in r], "shown_as_list"),
        "latency_p50": round(percentile(seconds, 0.5), 3),
        "latency_p90": round(percentile(seconds, 0.9), 3),
        "kinds": kinds,
        **(
            {
                "by_kind": {
                    kind: summarise([r for r in rows if r.get("kind_asked") == kind], by_kind=False)
                    for kind in sorted({r.get("kind_asked", "") for r in rows})
                }
            }
            if by_kind
            else {}
        ),
    }


MEASURES = [  # (key, label) in the order the table shows them
    ("holds_fact", "answer holds the fact"),
    ("cited_holds_fact", "... and a cited passage holds it"),
    ("gold_cited", "the gold document is cited"),
    ("wrong_cited", "wrong answer shown with a citation"),
    ("false_abstention", "answerable answered 'not in the documents'"),
    ("abstained", "unanswerable answered 'not in the documents'"),
    ("unanswerable_cited", "unanswerable answered with a citation"),
    ("fact_in_passages", "fact in the retrieved passages"),
    ("fact_in_evidence", "fact in the evidence given to the model"),
    ("fact_in_generated", "fact in the model's own text"),
    ("parts_right", "several parts: every part right"),
    ("shown_as_list", "list or comparison shown as a list or table"),
    ("latency_p50", "latency p50 (s)"),
    ("latency_p90", "latency p90 (s)"),
]


def format_table(summary: dict) -> str:
    lines = [
        f"{summary['questions']} questions ({summary['answerable']} answerable, {summary['unanswerable']} unanswerable)",
        "",
        "| measure | value |",
        "| --- | --- |",
    ]
    for key, label in MEASURES:
        value = summary.get(key)
        lines.append(f"| {label} | {'-' if value is None else value} |")
    lines.append("")
    lines.append("answers by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["kinds"].items())))
    kinds = summary.get("by_kind", {})
    if len(kinds) > 1:
        lines += [
            "",
            "| question kind | questions | holds the fact | wrong with a citation | not found |",
            "| --- | --- | --- | --- | --- |",
        ]
        for kind, part in kinds.items():
            not_found = part["abstained"] if part["answerable"] == 0 else part["false_abstention"]
            lines.append(
                f"| {kind} | {part['questions']} | {_cell(part['holds_fact'])} | {_cell(part['wrong_cited'])} | {_cell(not_found)} |"
            )
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else str(value)


def threshold_table(rows: list[dict], thresholds: Iterable[float]) -> list[dict]:
    """For each candidate threshold on the gate's confidence, what deciding "found" by it
    alone would give: false abstention on answerable questions, abstention on
    unanswerable ones, and the precision and recall of "not found"."""
    table = []
    answerable = [r for r in rows if r["answerable"] and r.get("confidence") is not None]
    unanswerable = [r for r in rows if not r["answerable"] and r.get("confidence") is not None]
    for threshold in thresholds:
        false_abstained = sum(r["confidence"] < threshold for r in answerable)
        abstained = sum(r["confidence"] < threshold for r in unanswerable)
        said = false_abstained + abstained
        table.append(
            {
                "threshold": round(threshold, 3),
                "false_abstention": round(false_abstained / len(answerable), 3) if answerable else None,
                "abstained": round(abstained / len(unanswerable), 3) if unanswerable else None,
                "not_found_precision": round(abstained / said, 3) if said else None,
                "not_found_recall": round(abstained / len(unanswerable), 3) if unanswerable else None,
            }
        )
    return table
