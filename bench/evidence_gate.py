"""The "not in the documents" decision, studied offline: retrieval and
evidence scoring (no generation) for every labelled question, then the gate
(generation/gate.py) fitted and scored on the same evidence.

    .venv/bin/python bench/evidence_gate.py demo|postgresql [LABEL]
    .venv/bin/python bench/evidence_gate.py --replay bench/results/evidence-gate-*.json   # the threshold's grid
    .venv/bin/python bench/evidence_gate.py --fit bench/results/evidence-gate-*.json      # the gate's coefficients
    .venv/bin/python bench/evidence_gate.py --order bench/results/evidence-gate-*.json    # a fitted order score

Uses the data folder of bench/answers.py (the corpus is ingested if needed).
Writes bench/results/evidence-gate-<corpus>[-LABEL].json (a row per question: every
shortlisted unit with its features, both scores, its passage's retrieval
rank and whether it holds the fact; the question's terms and their corpus
frequency), the data for replaying other weights or gates offline, and
prints, for answerable questions, how often the unit ranked first holds the
fact by the evidence score and by the order score (generation/evidence.py).
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import corpus_files  # noqa: E402
from bench.common import ROOT, setup_django  # noqa: E402


def collect(name: str) -> list[dict]:
    files = corpus_files(name)
    setup_django(str(Path(tempfile.gettempdir()) / f"rag-answers-{name}"))
    from django.conf import settings
    from django.core.management import call_command

    from generation import evaluation, evidence, gathering, identifiers
    from generation.claims import terms
    from retrieval.search import search

    call_command("ingest", *map(str, files), "--inline", stdout=sys.stderr)
    with open(ROOT / "bench" / "qa" / f"{name}.jsonl", encoding="utf-8") as handle:
        questions = evaluation.parse_questions(handle)
    rows = []
    for done, item in enumerate(questions, start=1):
        hits = search(item.question, k=settings.RAG_ANSWER_PASSAGES)
        scored = gathering.score_units(item.question, hits)
        profile, weights = scored.profile, scored.weights
        counts, total = scored.counts, scored.total
        chosen = {
            id(u)
            for u in evidence.select(
                scored.ranked, limit=settings.RAG_EVIDENCE_ITEMS, max_chars=settings.RAG_EVIDENCE_CHARS
            )
        }
        units = []
        for unit in scored.ranked:  # as generation.gathering.gather_evidence scores them
            hit = hits[unit.passage]
            context = terms(" ".join((hit.title, hit.heading, unit.heading, unit.text)))
            units.append(
                {
                    "text": unit.text,
                    "heading": unit.heading,
                    "title": hit.title,
                    "passage_heading": hit.heading,
                    "document": hit.document_id,
                    "score": unit.score,
                    "order": unit.order,
                    "features": unit.features,
                    "rank": unit.passage + 1,
                    "chosen": id(unit) in chosen,
                    "missing": sorted(t for t in profile.terms if t not in context),
                    "holds": bool(item.answerable and evaluation.holds(unit.text, item.answers)),
                }
            )
        rows.append(
            {
                "id": item.id,
                "question": item.question,
                "answerable": item.answerable,
                "weights": {t: round(w, 3) for t, w in weights.items()},
                "df": {t: (counts or {}).get(profile.words.get(t, t), 0) for t in profile.terms},
                "passages": total,
                "in_passages": bool(item.answerable and any(evaluation.holds(h.text, item.answers) for h in hits)),
                "unknown": identifiers.unmentioned(
                    identifiers.named(item.question), [" ".join((p.title, p.heading, p.text)) for p in scored.passages]
                ),
                "units": units,
            }
        )
        print(f"\r{done}/{len(questions)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return rows


def summary(rows: list[dict]) -> dict:
    """Over answerable questions: the fact in the retrieved passages, in the
    shortlisted units, and in the unit ranked first by each score."""
    answerable = [r for r in rows if r["answerable"]]

    def share(test) -> float:
        return round(sum(bool(test(r)) for r in answerable) / len(answerable), 3)

    def first(key):
        return lambda r: r["units"] and max(r["units"], key=lambda u: u[key])["holds"]

    return {
        "in_passages": share(lambda r: r["in_passages"]),
        "in_shortlist": share(lambda r: any(u["holds"] for u in r["units"])),
        "first_by_evidence_score": share(first("score")),
        "first_by_order_score": share(first("order")),
    }


def signals(row: dict) -> dict | None:
    """The gate's signals for a row (None: declined by rule, before the model:
    no evidence, or an identifier no passage mentions)."""
    from generation import evidence, gate

    chosen = [u for u in row["units"] if u["chosen"]]
    if not chosen or row.get("unknown"):
        return None
    passages = [evidence.Passage("", u["title"], u.get("passage_heading", ""), u.get("document")) for u in chosen]
    best = [evidence.Unit(i, 0, 0, 0, 0, u["text"], u["heading"], score=u["score"]) for i, u in enumerate(chosen)]
    return gate.signals(best, passages, row["weights"])


def replay(rows: list[dict], threshold: float, model: dict | None = None) -> dict:
    """False abstention (answerable declined), abstention (unanswerable
    declined) and answered with the fact among the evidence, under the gate
    at `threshold` (with `model`'s intercept and coefficients, else the
    product's) and, as the product decides, gate.lacking."""
    from generation import evidence, gate

    model = model or {}
    decided = []
    for row in rows:
        values = signals(row)
        found = values is not None and gate.probability(values, **model) >= threshold
        asked = evidence.profile(row["question"])
        found = found and not gate.lacking([u["text"] for u in row["units"] if u["chosen"]], asked.wants, asked.also)
        decided.append((row["answerable"], found, any(u["holds"] for u in row["units"] if u["chosen"])))
    answerable = [(f, h) for a, f, h in decided if a]
    unanswerable = [f for a, f, h in decided if not a]
    return {
        "false_abstention": round(sum(not f for f, h in answerable) / max(1, len(answerable)), 3),
        "abstention": round(unanswerable.count(False) / max(1, len(unanswerable)), 3),
        "answered_with_fact": round(sum(f and h for f, h in answerable) / max(1, len(answerable)), 3),
    }


def fit(rows: list[dict]) -> dict:
    """Logistic regression (scikit-learn, L2, standardised signals) of
    "answerable" on the gate's signals; returned on the raw signals, as
    generation/gate.py takes them."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from generation import gate

    kept = [(r, signals(r)) for r in rows]
    kept = [(r, v) for r, v in kept if v is not None]
    x = np.array([[v[name] for name in gate.SIGNALS] for r, v in kept])
    y = np.array([int(r["answerable"]) for r, v in kept])
    mean, scale = x.mean(0), x.std(0) + 1e-9
    model = LogisticRegression(C=1.0).fit((x - mean) / scale, y)
    weights = model.coef_[0] / scale
    return {
        "intercept": round(float(model.intercept_[0] - (weights * mean).sum()), 3),
        "coefficients": {name: round(float(w), 3) for name, w in zip(gate.SIGNALS, weights)},
    }


def cross_validated(corpora: dict, thresholds, folds: int = 5, seed: int = 0) -> dict:
    """The fit judged on questions it did not see: the corpora's rows pooled,
    split into `folds`, each fold replayed under a gate fitted on the others."""
    import numpy as np

    pooled = [(name, row) for name, rows in corpora.items() for row in rows]
    fold = np.random.default_rng(seed).integers(0, folds, len(pooled))
    models = [fit([row for (name, row), f in zip(pooled, fold) if f != k]) for k in range(folds)]
    table = {}
    for name in corpora:
        for threshold in thresholds:
            parts = [
                ([row for (n, row), f in zip(pooled, fold) if n == name and f == k], models[k]) for k in range(folds)
            ]
            counts = {"answerable": 0, "unanswerable": 0, "false_abstained": 0, "abstained": 0, "with_fact": 0}
            for rows, model in parts:
                result = replay(rows, threshold, model)
                a = sum(r["answerable"] for r in rows)
                u = len(rows) - a
                counts["answerable"] += a
                counts["unanswerable"] += u
                counts["false_abstained"] += round(result["false_abstention"] * a)
                counts["abstained"] += round(result["abstention"] * u)
                counts["with_fact"] += round(result["answered_with_fact"] * a)
            table.setdefault(name, {})[threshold] = {
                "false_abstention": round(counts["false_abstained"] / counts["answerable"], 3),
                "abstention": round(counts["abstained"] / max(1, counts["unanswerable"]), 3),
                "answered_with_fact": round(counts["with_fact"] / counts["answerable"], 3),
            }
    return table


ORDER_FEATURES = ("dense", "overlap", "context", "type", "no_type", "inverse_rank", "log_length", "salient")


def order_groups(rows: list[dict]) -> list[tuple]:
    """Per answerable question with the fact among its chosen units: each
    unit's features (ORDER_FEATURES), whether it holds the fact, and its
    order score."""
    import math

    import numpy as np

    from generation import evidence
    from generation.claims import terms

    groups = []
    for row in rows:
        chosen = [u for u in row["units"] if u["chosen"]]
        if not row["answerable"] or not any(u["holds"] for u in chosen):
            continue
        weights = row["weights"]
        rare = evidence.salient(weights)
        features = []
        for u in chosen:
            f, text = u["features"], terms(u["text"])
            salient = evidence.coverage({t: weights[t] for t in rare}, text)
            features.append(
                [f["dense"], f["overlap"], f["context"], f["type"], float(f["type"] == 0), 1.0 / u["rank"]]
                + [math.log(len(u["text"]) + 1), salient]
            )
        groups.append(
            (np.array(features), np.array([u["holds"] for u in chosen]), np.array([u["order"] for u in chosen]))
        )
    return groups


def order_study(corpora: dict, folds: int = 5, seed: int = 0) -> dict:
    """Which unit to quote first: the share of questions whose first unit
    holds the fact under the product's order score and under a logistic model
    of the units' features (pointwise, L2), fitted on one corpus and judged on
    the other, and cross-validated over both."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    def fitted(groups, columns):
        x = np.vstack([g[0][:, columns] for g in groups])
        y = np.concatenate([g[1] for g in groups])
        mean, scale = x.mean(0), x.std(0) + 1e-9
        model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y)
        return lambda features: model.decision_function((features[:, columns] - mean) / scale)

    def first_holds(groups, rank) -> float:
        return round(sum(bool(y[int(np.argmax(rank(x, order)))]) for x, y, order in groups) / len(groups), 3)

    data = {name: order_groups(rows) for name, rows in corpora.items()}
    result = {"product order score": {n: first_holds(g, lambda x, order: order) for n, g in data.items()}}
    pooled = [(n, g) for n, groups in data.items() for g in groups]
    fold = np.random.default_rng(seed).integers(0, folds, len(pooled))
    for size in (6, len(ORDER_FEATURES)):
        columns = list(range(size))
        label = f"fitted on {'+'.join(ORDER_FEATURES[:size])}"
        models = [fitted([g for (n, g), f in zip(pooled, fold) if f != k], columns) for k in range(folds)]
        held_out = {n: 0 for n in data}
        for (n, (x, y, _order)), f in zip(pooled, fold):
            held_out[n] += bool(y[int(np.argmax(models[f](x)))])
        result[label + ", cross-validated"] = {n: round(held_out[n] / len(data[n]), 3) for n in data}
        for name in data:
            for other in data:
                if other != name:
                    model = fitted(data[name], columns)
                    result[f"{label}, fitted on {name}"] = {
                        other: first_holds(data[other], lambda x, o, model=model: model(x))
                    }
    return result


THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def main():
    if sys.argv[1] in ("--replay", "--fit", "--order"):
        setup_django()
        corpora = {Path(p).stem: json.loads(Path(p).read_text()) for p in sys.argv[2:]}
        if sys.argv[1] == "--order":
            for label, shares in order_study(corpora).items():
                print(f"{label}: {json.dumps(shares)}")
            return
        if sys.argv[1] == "--fit":
            print("fitted on all:", json.dumps(fit([r for rows in corpora.values() for r in rows])))
            for name, rows in corpora.items():  # fitted on one corpus, judged on the others
                model = fit(rows)
                for other, others in corpora.items():
                    if other != name:
                        print(f"fitted on {name}, judged on {other}:")
                        for threshold in THRESHOLDS:
                            print(f"  {threshold}: {replay(others, threshold, model)}")
            print("cross-validated (5 folds over all):")
            for name, table in cross_validated(corpora, THRESHOLDS).items():
                for threshold, result in table.items():
                    print(f"  {name} {threshold}: {result}")
            return
        for name, rows in corpora.items():
            print(name)
            for threshold in THRESHOLDS:
                print(f"  threshold {threshold}: {replay(rows, threshold)}")
        return
    name, label = sys.argv[1], (sys.argv[2:] or [""])[0]
    rows = collect(name)
    out = ROOT / "bench" / "results" / f"evidence-gate-{name}{'-' + label if label else ''}.json"
    out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(out)
    print(json.dumps(summary(rows)))


if __name__ == "__main__":
    main()
