"""Retrieval on real questions, short and long, in every configuration the
product can serve (issue #15): each retriever version (the packaged base and
fine-tuned ones) x each passage form (text, contextual) x dense, BM25,
hybrid and, where the version has a reranker, hybrid reranked.

    .venv/bin/python bench/retrieval_quality.py [--versions base v1] [--forms text contextual] [--label NAME]

Uses the PostgreSQL data folder of bench/answers.py (the corpus is ingested
if needed; a version other than base must have been trained there, e.g. by
`RAG_DATA_DIR=/tmp/rag-answers-postgresql manage.py finetune_retriever`).
Two labelled sets, scored by document (a document counts as found when any
of its passages is retrieved), at k = 1, 5, 10 and 20 (recall@1 is hit@1):

- long: bench/qa/postgresql-long.jsonl, situations typed as paragraphs,
  each with every page it needs;
- short: the answerable questions of bench/qa/postgresql.jsonl and their
  gold page.

Each configuration is switched in as users would get it (versions.switch_retriever:
the index in that form built in the background, then swapped in) and run
through search.evaluate_retrieval. Writes bench/results/retrieval-quality[-NAME].json.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import corpus_files, machine  # noqa: E402
from bench.common import ROOT, setup_django  # noqa: E402

QA = ROOT / "bench" / "qa"


def labelled_sets():
    from ingestion.models import Document
    from retrieval.evaluation import LabelledQuery

    ids = dict(Document.objects.values_list("original_filename", "pk"))
    long = [json.loads(line) for line in open(QA / "postgresql-long.jsonl", encoding="utf-8") if line.strip()]
    short = [json.loads(line) for line in open(QA / "postgresql.jsonl", encoding="utf-8") if line.strip()]
    return {
        "long": [LabelledQuery(q["query"], frozenset(ids[d] for d in q["documents"]), "document") for q in long],
        "short": [
            LabelledQuery(q["question"], frozenset({ids[q["document"]]}), "document") for q in short if q["answerable"]
        ],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", nargs="+", default=["base"])
    parser.add_argument("--forms", nargs="+", default=["text", "contextual"])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    files = corpus_files("postgresql")
    setup_django(str(Path(tempfile.gettempdir()) / "rag-answers-postgresql"))
    from django.core.management import call_command

    from retrieval import stores, versions
    from retrieval.models import RetrieverVersion
    from retrieval.search import evaluate_retrieval

    call_command("ingest", *map(str, files), "--inline", stdout=sys.stderr)
    sets = labelled_sets()
    before = stores.active_retriever()
    results = {"machine": machine(), "sets": {name: len(items) for name, items in sets.items()}, "runs": []}
    try:
        for name in args.versions:
            version = versions.base_version() if name == "base" else RetrieverVersion.objects.get(name=name)
            for form in args.forms:
                started = time.perf_counter()
                versions.switch_retriever(version.name, version.path, form=form)
                switched = time.perf_counter() - started
                for set_name, items in sets.items():
                    for k in (1, 5, 10, 20):
                        report = evaluate_retrieval(items, k)
                        summary = {method: m.as_dict() for method, m in report["summary"].items()}
                        results["runs"].append(
                            {"version": name, "form": form, "set": set_name, "k": k, "summary": summary}
                        )
                        print(
                            f"{name:5} {form:10} {set_name:5} k={k:2} "
                            + "  ".join(f"{m} R{v['recall']:.3f} MRR{v['mrr']:.3f}" for m, v in summary.items()),
                            flush=True,
                        )
                print(f"  (switch {switched:.0f} s)", flush=True)
    finally:
        versions.switch_retriever(before["name"], before["model"], form=before["form"])
    out = ROOT / "bench" / "results" / f"retrieval-quality{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
