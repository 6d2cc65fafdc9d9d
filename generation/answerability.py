"""The answerability model: the coefficients of the "not in the documents"
gate (generation/gate.py) fitted on the corpus the product serves, kept as a
versioned artifact. Pure apart from reading and writing its file.

An artifact is a JSON file holding the signals it was fitted on (their names
and gate.DEFINITION), the intercept and the coefficients over the raw
signals, the threshold on the probability, the probes it was fitted on by
kind, and its precision and recall on held-out probes (questions about
documents the fit never saw). `load` refuses an artifact whose signals are
not the ones this code computes (FeatureMismatch): coefficients fitted on
other signals are silently miscalibrated, so a change to a signal's
definition makes every older artifact refuse to load until it is refit.

The probes (generation/probes.py) are the product's own questions about its
passages, answerable, and unanswerable ones made the way real ones arise;
generation/fitting.py makes them and runs the fit in the background.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from generation import gate

FORMAT = 1
PACKAGED_NAME = "packaged"
# The fitted threshold is the lowest at which the fit's own unanswerable
# probes are declined at least this often (the held-out ones then say how
# that transfers); never under MIN_THRESHOLD.
MIN_THRESHOLD = 0.5
THRESHOLDS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))


class FeatureMismatch(ValueError):
    """The artifact was fitted on other signals than this code computes."""


@dataclass(frozen=True)
class Model:
    """A fitted gate: gate.probability with these coefficients, and the
    threshold its "answers" is decided at (None: RAG_EVIDENCE_THRESHOLD)."""

    intercept: float
    coefficients: dict
    threshold: float | None = None
    name: str = PACKAGED_NAME
    signals: tuple = gate.SIGNALS
    definition: int = gate.DEFINITION
    fitted: dict = field(default_factory=dict)  # probes by kind, held-out precision and recall

    def probability(self, values: dict) -> float:
        return gate.probability(values, self.intercept, self.coefficients)

    def as_dict(self) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "signals": list(self.signals),
            "definition": self.definition,
            "intercept": self.intercept,
            "coefficients": self.coefficients,
            "threshold": self.threshold,
            "fitted": self.fitted,
        }


PACKAGED = Model(gate.INTERCEPT, dict(gate.COEFFICIENTS))


def save(model: Model, path: str) -> None:
    """Write the artifact atomically (a reader never sees half of one)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(model.as_dict(), out, indent=1)
    os.replace(temporary, path)


def load(path: str) -> Model:
    """The artifact at `path`; FeatureMismatch when it was fitted on other
    signals than gate.SIGNALS as gate.DEFINITION computes them."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("format") != FORMAT:
        raise FeatureMismatch(f"{path} is not an answerability artifact of format {FORMAT}")
    signals, definition = tuple(data.get("signals") or ()), data.get("definition")
    if signals != gate.SIGNALS or definition != gate.DEFINITION or set(data["coefficients"]) != set(signals):
        raise FeatureMismatch(
            f"{path} was fitted on the signals {', '.join(signals)} (definition {definition}); this code computes "
            f"{', '.join(gate.SIGNALS)} (definition {gate.DEFINITION}): refit it (manage.py fit_answerability)"
        )
    return Model(
        float(data["intercept"]),
        {k: float(v) for k, v in data["coefficients"].items()},
        None if data.get("threshold") is None else float(data["threshold"]),
        data.get("name", ""),
        signals,
        definition,
        data.get("fitted") or {},
    )


@dataclass(frozen=True)
class Row:
    """One probe's signals: whether its question is answerable, how it was
    made, and the document it is about (held-out probes are split by it)."""

    values: dict
    answerable: bool
    kind: str
    document: int
    question: str = ""


def fit(
    rows: Sequence[Row], *, name: str, abstention: float, heldout: set, prior: float, start: Model | None = None
) -> Model:
    """The gate fitted on the rows whose document is not in `heldout`:
    logistic regression with the classes balanced and a Gaussian prior
    centred on `start`'s coefficients (the packaged ones: what the labelled
    sets taught), `prior` its weight in probes (0: a plain fit; the more
    probes a corpus gives, the further they move it). The threshold is set so
    that at least `abstention` of those rows' unanswerable probes are
    declined; precision, recall and abstention are measured on the held-out
    rows. ValueError when either side lacks a class."""
    train = [r for r in rows if r.document not in heldout]
    judged = [r for r in rows if r.document in heldout]
    for side, part in (("fitted", train), ("held-out", judged)):
        if len({r.answerable for r in part}) < 2:
            raise ValueError(f"the {side} probes need both answerable and unanswerable questions ({len(part)} probes)")
    start = start or PACKAGED
    centre = [start.intercept] + [start.coefficients[s] for s in gate.SIGNALS]
    theta = _map_logistic(
        [[r.values[s] for s in gate.SIGNALS] for r in train], [r.answerable for r in train], centre, prior
    )
    draft = Model(round(theta[0], 4), {s: round(w, 4) for s, w in zip(gate.SIGNALS, theta[1:])}, name=name)
    threshold = choose_threshold(draft, train, abstention)
    model = Model(draft.intercept, draft.coefficients, threshold, name)
    summary = {
        "probes": counts(rows),
        "heldout_documents": len(heldout),
        "abstention_target": abstention,
        "prior": prior,
        "fitted_on": measures(model, train),
        "heldout": measures(model, judged),
    }
    return Model(model.intercept, model.coefficients, threshold, name, fitted=summary)


def _map_logistic(x: list, y: list, centre: list, prior: float, steps: int = 50) -> list[float]:
    """(intercept, coefficients...) maximising the class-balanced logistic
    likelihood of y on x plus a Gaussian prior of weight `prior` centred on
    `centre` (Newton's method; a small ridge keeps a plain fit defined)."""
    import numpy as np

    design = np.hstack([np.ones((len(x), 1)), np.asarray(x, dtype=float)])
    target = np.asarray(y, dtype=float)
    positives = target.sum()
    weight = np.where(target == 1, len(target) / (2 * positives), len(target) / (2 * (len(target) - positives)))
    centre_vector = np.asarray(centre, dtype=float)
    ridge = max(prior, 1e-3) * np.eye(design.shape[1])
    theta = centre_vector.copy()
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -30, 30)))
        gradient = design.T @ (weight * (p - target)) + ridge @ (theta - centre_vector)
        hessian = design.T @ (design * (weight * p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return [float(v) for v in theta]


def choose_threshold(model: Model, rows: Sequence[Row], abstention: float) -> float:
    """The lowest threshold of THRESHOLDS at which `abstention` of the rows'
    unanswerable probes are declined (the highest when none reaches it)."""
    unanswerable = [model.probability(r.values) for r in rows if not r.answerable]
    for threshold in THRESHOLDS:
        if sum(p < threshold for p in unanswerable) >= abstention * len(unanswerable):
            return max(MIN_THRESHOLD, threshold)
    return THRESHOLDS[-1]


def measures(model: Model, rows: Sequence[Row]) -> dict:
    """Of "answers" at the model's threshold: precision (answerable among
    the answered), recall (answered among the answerable) and abstention
    (declined among the unanswerable), overall and for each kind of probe."""
    threshold = model.threshold if model.threshold is not None else 0.5
    answered = [(model.probability(r.values) >= threshold, r) for r in rows]
    said_yes = [r for yes, r in answered if yes]
    answerable = [yes for yes, r in answered if r.answerable]
    unanswerable = [yes for yes, r in answered if not r.answerable]
    result = {
        "probes": len(rows),
        "precision": _share(sum(r.answerable for r in said_yes), len(said_yes)),
        "recall": _share(sum(answerable), len(answerable)),
        "abstention": _share(unanswerable.count(False), len(unanswerable)),
    }
    for kind in sorted({r.kind for r in rows if not r.answerable}):
        declined = [not yes for yes, r in answered if r.kind == kind]
        result[f"abstention_{kind}"] = _share(sum(declined), len(declined))
    return result


def counts(rows: Sequence[Row]) -> dict:
    found: dict = {}
    for row in rows:
        found[row.kind] = found.get(row.kind, 0) + 1
    return dict(sorted(found.items()))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None
