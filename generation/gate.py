"""Whether the evidence answers the question: the "not in the documents"
decision. Pure.

A logistic model over four signals of the best evidence units (best first by
the evidence score, generation/evidence.py, as evidence.select keeps them):

    best      the best unit's evidence score
    lead      its lead over the runner-up (at most LEAD_CAP; LEAD_CAP when
              it stands alone)
    together  1 when the two best come from the same document (neighbours
              that agree: "within 30 days" and "later than 90 days are
              rejected") or state a number in common (independent sources
              that agree on the value count for the answer); 0 for siblings
              that compete (the Gold card's annual fee and the Platinum
              card's, for "the Diamond card's fee?")
    missing   the share of the question's weight (each term's IDF) in terms
              that none of the MISSING_UNITS best units mentions, with their
              headings and their page's title ("diamond", "bitcoin")

A question that asks for a kind of value (an amount for "how much", a
duration for "how long", a stated default, ...) is not answered by evidence
none of whose selected units states one (`lacking`), however high the
probability: quoting "Specifies the shutdown mode." for "which shutdown mode
is the default?" shows a citation that does not answer, and so does "Default
limit on the number of seconds to wait" for "how many seconds by default?".

The coefficients the product uses are fitted on the corpus it serves
(generation/answerability.py: questions made from its own passages, refit in
the background); the PACKAGED ones below serve until such a fit exists, and
were fitted by `bench/evidence_gate.py --fit` on the labelled sets in bench/qa
(docs/BENCHMARKS.md). The threshold on the probability is
RAG_EVIDENCE_THRESHOLD. The model only
orders questions by how likely the documents answer them: it never decides
what the answer is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from generation.claims import numbers, terms
from generation.evidence import holds_wanted

SIGNALS = ("best", "lead", "together", "missing")
# What the signals mean: raised whenever one is computed differently, so that a
# model fitted on the old ones refuses to load (generation/answerability.py).
# 2: "together" also counts two documents stating a number in common.
DEFINITION = 2
# Evidence this weak never answers, whatever else the model sees (no
# answered question of the labelled sets needed less; it guards corpora
# unlike them).
FLOOR = 0.4
LEAD_CAP = 0.3
MISSING_UNITS = 3
# Fitted by bench/evidence_gate.py --fit (logistic regression, L2, on the raw
# signals); docs/BENCHMARKS.md has the fit's cross-validated trade-off.
# Fitted on bench/results/evidence-gate-{demo,postgresql}-s10.json (229 questions).
INTERCEPT = -0.063
COEFFICIENTS = {"best": 3.084, "lead": 2.188, "together": 1.916, "missing": -3.143}


def signals(best: Sequence, passages: Sequence, weights: dict) -> dict:
    """The gate's signals for `best` (evidence.Unit, best first by score),
    whose `passage` indexes `passages` (evidence.Passage), given the
    question's term weights (evidence.idf_weights)."""
    if not best:
        return {}
    first = best[0]
    lead = LEAD_CAP if len(best) == 1 else min(LEAD_CAP, first.score - best[1].score)
    together = float(len(best) > 1 and _agree(first, best[1], passages))
    mentioned: set = set()
    for unit in best[:MISSING_UNITS]:
        passage = passages[unit.passage]
        mentioned |= terms(" ".join((passage.title, passage.heading, unit.heading, unit.text)))
    total = sum(weights.values())
    missing = sum(w for t, w in weights.items() if t not in mentioned) / total if total else 0.0
    return {"best": first.score, "lead": round(lead, 4), "together": together, "missing": round(missing, 4)}


def _agree(first, second, passages) -> bool:
    """Two units back each other: one document, or the same number stated."""
    if _document(passages[first.passage]) == _document(passages[second.passage]):
        return True
    return bool(numbers(first.text) & numbers(second.text))


def _document(passage):
    return passage.document if passage.document is not None else passage.title


def probability(values: dict, intercept: float = INTERCEPT, coefficients: dict | None = None) -> float:
    """The model's probability that the documents answer (0 without evidence,
    or with evidence under FLOOR)."""
    if not values or values["best"] < FLOOR:
        return 0.0
    coefficients = COEFFICIENTS if coefficients is None else coefficients
    z = intercept + sum(coefficients[name] * values[name] for name in SIGNALS)
    return 1.0 / (1.0 + math.exp(-z))


def lacking(texts: Sequence[str], wants: str, also: str = "") -> str:
    """The kind of value the question asks for (evidence.Profile.wants) when
    none of `texts` (the selected evidence) states one, or, for a default of
    a kind (Profile.also: "how long ... by default"), when none states a
    default of that kind; "" otherwise."""
    if wants == "any":
        return ""
    if not any(holds_wanted(text, wants) for text in texts):
        return wants
    if also and not any(holds_wanted(text, wants) and holds_wanted(text, also) for text in texts):
        return also
    return ""
