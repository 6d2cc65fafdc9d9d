"""Long questions and the encoder's window (issue #15, item 2): a question
longer than the window used to be cut at it; it is now encoded in
overlapping windows whose vectors are averaged (SentenceTransformerEmbedder.
_queries_in_windows), while BM25 always reads the whole question.

    .venv/bin/python bench/long_questions.py [--windows 256 128 64] [--label NAME]

The long PostgreSQL situations (bench/qa/postgresql-long.jsonl) are 41-127
words, inside the packaged encoder's 256-token window, so at 256 both ways
read the same text. To see what cutting loses on real questions, the query
side is also run with a 128- and a 64-token window (the passages stay indexed
as they are): "cut" reads the first window only, as before, "windows" reads
them all. Scored by document through search.evaluate_retrieval (dense alone
and hybrid), on the serving version of the PostgreSQL data folder of
bench/answers.py. Writes bench/results/long-questions[-NAME].json.
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import corpus_files, machine  # noqa: E402
from bench.common import ROOT, setup_django  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", nargs="+", type=int, default=[256, 128, 64])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    files = corpus_files("postgresql")
    setup_django(str(Path(tempfile.gettempdir()) / "rag-answers-postgresql"))
    from django.core.management import call_command

    from bench.retrieval_quality import labelled_sets
    from retrieval.embedding import SentenceTransformerEmbedder, get_embedder
    from retrieval.search import evaluate_retrieval

    call_command("ingest", *map(str, files), "--inline", stdout=sys.stderr)
    items = labelled_sets()["long"]
    embedder = get_embedder()
    model = embedder.warm_up()
    tokens = [len(model.tokenizer(item.query, add_special_tokens=False)["input_ids"]) for item in items]
    served = model.max_seq_length
    windowed = SentenceTransformerEmbedder._queries_in_windows

    def cut(self, texts):  # the old way: the encoder truncates at its window
        return self._encode(list(texts), "encode_query")

    results = {
        "machine": machine(),
        "queries": len(items),
        "tokens": {"min": min(tokens), "median": statistics.median(tokens), "max": max(tokens)},
        "served_window": served,
        "runs": [],
    }
    print(f"{len(items)} long questions, {results['tokens']} tokens; served window {served}", flush=True)
    try:
        for window in args.windows:
            model.max_seq_length = window
            longer = sum(t > window - 2 for t in tokens)
            for way, encode in (("cut", cut), ("windows", windowed)):
                SentenceTransformerEmbedder._queries_in_windows = encode
                embedder._queries.clear()
                row = {"window": window, "longer": longer, "way": way, "k": {}}
                for k in (10, 20):
                    summary = evaluate_retrieval(items, k)["summary"]
                    row["k"][k] = {m: summary[m].as_dict() for m in ("dense", "hybrid")}
                results["runs"].append(row)
                ten, twenty = row["k"][10], row["k"][20]
                print(
                    f"window {window:3} ({longer:2} longer) {way:7} "
                    + "  ".join(
                        f"{m} R@10 {ten[m]['recall']:.3f} R@20 {twenty[m]['recall']:.3f} MRR {ten[m]['mrr']:.3f}"
                        for m in ("dense", "hybrid")
                    ),
                    flush=True,
                )
    finally:
        SentenceTransformerEmbedder._queries_in_windows = windowed
        model.max_seq_length = served
        embedder._queries.clear()
    out = ROOT / "bench" / "results" / f"long-questions{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
