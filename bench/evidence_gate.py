"""The "not in the documents" decision, studied offline: retrieval and
evidence scoring (no generation) for every labelled question, then each gate
rule scored on the same evidence.

    .venv/bin/python bench/evidence_gate.py demo|postgresql [LABEL]
    .venv/bin/python bench/evidence_gate.py --replay bench/results/evidence-gate-*.json   # the gate's grid

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


def found(row: dict, **gate) -> bool:
    """The gate of generation.gathering.gather_evidence, replayed on a row."""
    from generation import evidence

    if not row["units"] or row.get("unknown"):
        return False
    best = [
        evidence.Unit(0, 0, 0, 0, 0, u["text"], u["heading"], score=u["score"]) for u in row["units"] if u["chosen"]
    ]
    return evidence.settles(best, **gate)


def replay(rows: list[dict], **gate) -> dict:
    """False abstention (answerable declined) and abstention (unanswerable declined) under `gate`."""
    decided = [(r["answerable"], found(r, **gate)) for r in rows]
    answerable = [f for a, f in decided if a]
    unanswerable = [f for a, f in decided if not a]
    return {
        "false_abstention": round(answerable.count(False) / max(1, len(answerable)), 3),
        "abstention": round(unanswerable.count(False) / max(1, len(unanswerable)), 3),
    }


def main():
    if sys.argv[1] == "--replay":  # bench/evidence_gate.py --replay RESULT.json ...: the threshold's grid
        from django.conf import settings

        setup_django()
        gate = {"gap": settings.RAG_EVIDENCE_GAP, "clear": settings.RAG_EVIDENCE_CLEAR}
        for path in sys.argv[2:]:
            rows = json.loads(Path(path).read_text())
            print(path)
            for threshold in (0.40, 0.42, 0.44, 0.46, 0.48, 0.50):
                without = replay([{**r, "unknown": ()} for r in rows], threshold=threshold, **gate)
                print(
                    f"  threshold {threshold}: {without}; with unknown identifiers declined: "
                    f"{replay(rows, threshold=threshold, **gate)}"
                )
        return
    name, label = sys.argv[1], (sys.argv[2:] or [""])[0]
    rows = collect(name)
    out = ROOT / "bench" / "results" / f"evidence-gate-{name}{'-' + label if label else ''}.json"
    out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    print(out)
    print(json.dumps(summary(rows)))


if __name__ == "__main__":
    main()
