"""BM25 top-k: our exact pruned search (retrieval/bm25_index.py Postings)
against bm25s's own `retrieve` on the same matrix and queries, in the same run.

    .venv/bin/python bench/bm25.py [--docs 200000] [--queries 400] [--k 60]
    .venv/bin/python bench/bm25.py --reuse DATA_DIR   # DATA_DIR: the /tmp/rag-bench-* folder a bench/search.py run left

The corpus is bench/search.py's: 40-word texts from a Zipfian vocabulary of
30,000 words, five-word queries from the same vocabulary (no stopwords among
them, so common words have posting lists of most of the corpus). k=60 is
what a k=10 API search asks BM25 for. Both sides must return the same
scores; p50/p90/p99 and the ratios go to bench/results/bm25.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.search import Words  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--k", type=int, default=60)
    parser.add_argument("--reuse", metavar="DATA_DIR", help="the BM25 index of an earlier bench/search.py run")
    args = parser.parse_args()

    from retrieval.bm25_index import BM25Index, tokenize

    words = Words(0)
    if args.reuse:
        from bench.common import setup_django

        setup_django(args.reuse)
        from retrieval import stores

        index = stores.get_store().current_bm25()
    else:
        index = BM25Index()
        started = time.perf_counter()
        index.add(range(1, args.docs + 1), words.texts(args.docs, 40))
        index._built()
        print(f"indexed {args.docs} documents in {time.perf_counter() - started:.1f} s", flush=True)
    words.rng = np.random.default_rng(77)  # queries unlike the texts' draws
    queries = words.texts(args.queries, 5)
    engine = index._built()
    index.search("warm up", args.k)

    ours, raw = [], []
    for text in queries:
        tokens = tokenize([text])[0]  # bm25s is given them ready: its time leaves tokenising out
        start = time.perf_counter()
        scores, _ids = index.search(text, args.k)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        _rows, raw_scores = engine.retrieve([tokens], k=args.k, show_progress=False, n_threads=0)
        raw.append(time.perf_counter() - start)
        expected = np.sort(raw_scores[0][raw_scores[0] > 0])[::-1]
        np.testing.assert_allclose(scores, expected, rtol=1e-5)  # the same top-k, up to the order of ties

    def stats(times):
        times = np.asarray(times) * 1000
        return {f"p{q}_ms": round(float(np.percentile(times, q)), 2) for q in (50, 90, 99)} | {
            "mean_ms": round(float(times.mean()), 2)
        }

    row = {
        "documents": index.ntotal,
        "queries": len(queries),
        "k": args.k,
        "ours": stats(ours),
        "bm25s_retrieve": stats(raw),
    }
    row["speedup"] = {key: round(row["bm25s_retrieve"][key] / row["ours"][key], 2) for key in row["ours"]}
    print(json.dumps(row), flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bm25.json").write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
