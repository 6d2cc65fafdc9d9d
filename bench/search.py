"""Search latency at scale: raw FAISS against GET /api/search through the
whole stack (auth, throttling, query embedding, dense + BM25 fusion, the
permission filter, serialisation), in the same run.

    .venv/bin/python bench/search.py [--sizes 10000 100000 1000000] [--queries 200]

For each size, synthetic embedding-like 384-d unit vectors (tests/vectors.py:
clustered as real sentence embeddings are) and short texts for BM25 are
written as real Chunk rows and index snapshots, with the index type the
settings choose for that size (exact up to RAG_INDEX_EXACT_MAX, HNSW beyond).
Reports p50/p99 of raw FAISS search (the served index, on precomputed query
vectors) and of the API (new query texts each time: no query-vector cache
hits); the API again on the same texts (query vectors cached: everything but
the model runs anew) and with BM25 switched off; the API's parts (query
embedding, BM25, reading the chunk -> document map a process reads once);
recall@10 of the served index against exact search, build time and index
bytes per chunk; writes bench/results/search.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django  # noqa: E402
from tests.vectors import embedding_like  # noqa: E402

# Text drawn from a Zipfian vocabulary, as words in real text are (a few very
# common words, a long tail): BM25's cost depends on how long the posting
# lists of the query's words are.
VOCABULARY = 30_000


class Words:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        self.words = ["".join(self.rng.choice(letters, size=int(self.rng.integers(3, 10)))) for _ in range(VOCABULARY)]
        weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 1.07
        self.p = weights / weights.sum()

    def texts(self, n: int, count: int) -> list[str]:
        words = self.words
        return [" ".join(words[i] for i in row) for row in self.rng.choice(VOCABULARY, size=(n, count), p=self.p)]


def ms(values, q):
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 2)


def timed(function, items):
    times = []
    for item in items:
        start = time.perf_counter()
        function(item)
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--reuse",
        metavar="DATA_DIR",
        help="measure again on the rows and index an earlier run left in "
        "DATA_DIR (its largest size; build times are kept from bench/results/search.json)",
    )
    args = parser.parse_args()
    setup_django(args.reuse)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from ingestion import services as ingestion
    from ingestion.models import Chunk, Document
    from retrieval import stores
    from retrieval.embedding import get_embedder

    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] = "1000000/min"
    embedder = get_embedder()
    words = Words(0)
    collection = ingestion.get_collection()
    vectors, centers = embedding_like(max(args.sizes), 384, seed=0)
    query_vectors, _ = embedding_like(args.queries, 384, seed=1, centers=centers)
    results, total, ids, all_texts = [], 0, [], []
    out = Path(__file__).resolve().parent / "results"
    earlier = {row["chunks"]: row for row in json.loads((out / "search.json").read_text())} if args.reuse else {}
    if args.reuse:
        args.sizes = [Chunk.objects.count()]
        ids = list(Chunk.objects.order_by("pk").values_list("pk", flat=True))
    for size in args.sizes if not args.reuse else []:
        # Rows: one indexed document per 1,000 chunks.
        add = size - total
        docs = Document.objects.bulk_create(
            Document(
                collection=collection,
                title=f"Synthetic {total + i}",
                original_filename=f"synthetic-{total + i}.txt",
                file=f"synthetic/{total + i}.txt",
                sha256=f"{total + i:064d}",
                status="indexed",
            )
            for i in range(0, add, 1000)
        )
        texts = words.texts(add, 40)
        rows = Chunk.objects.bulk_create(
            (
                Chunk(
                    document=docs[i // 1000],
                    ordinal=i % 1000,
                    text=texts[i],
                    char_start=0,
                    char_end=len(texts[i]),
                    content_hash=f"{total + i:064x}",
                )
                for i in range(add)
            ),
            batch_size=5000,
        )
        ids.extend(c.pk for c in rows)
        params = stores.index_params(size)
        store = stores.get_store()
        all_texts.extend(texts)
        started = time.perf_counter()
        with store.write(fresh=True, params=params) as snapshot:
            for part in range(0, size, 100_000):
                snapshot.vectors.add(ids[part : part + 100_000], vectors[part : min(part + 100_000, size)])
            built = time.perf_counter()
            snapshot.bm25.add(ids, all_texts)
        write_seconds = time.perf_counter() - started
        total = size
        results.append(
            measure(
                size,
                ids,
                vectors,
                query_vectors,
                args.queries,
                words,
                embedder,
                client,
                {
                    "vector_index_build_s": round(built - started, 1),
                    "write_with_bm25_and_save_s": round(write_seconds, 1),
                },
            )
        )
    if args.reuse:
        size = args.sizes[0]
        kept = {key: earlier.get(size, {}).get(key) for key in ("vector_index_build_s", "write_with_bm25_and_save_s")}
        results = [row for row in earlier.values() if row["chunks"] != size]
        results.append(measure(size, ids, vectors, query_vectors, args.queries, words, embedder, client, kept))
        results.sort(key=lambda row: row["chunks"])
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=2) + "\n")


def measure(size, ids, vectors, query_vectors, count, words, embedder, client, build) -> dict:
    from retrieval import access, stores
    from retrieval.faiss_index import VectorIndex

    store = stores.get_store()
    index = store.current()
    bm25 = store.current_bm25()
    manifest = store.manifest()
    index_bytes = sum(p.stat().st_size for p in store.folder.glob(f"{manifest['file']}*"))

    exact = VectorIndex(384, use_gpu=False)
    exact.add(ids, vectors[:size])
    exact_times = timed(lambda v: exact.search(v, 10), query_vectors[:50])
    _, want = exact.search(query_vectors, 10)
    _, got = index.search(query_vectors, 10)
    recall = float(np.mean([len(set(w) & set(g)) / 10 for w, g in zip(want, got)]))
    exact = None  # frees the copy before the next size

    from django.conf import settings

    raw = timed(lambda v: index.search(v, 10), query_vectors)
    queries = words.texts(count * 3, 5)
    embed = timed(lambda q: embedder.embed_queries([q]), queries[count : count * 2])  # texts the API will not see
    lexical = timed(lambda q: bm25.search(q, 60), queries[count * 2 :])  # 60: the candidates a k=10 search asks for
    access._OWNERS.clear()
    started = time.perf_counter()
    access.chunk_owners(store, index)  # what the first search after a start reads
    owner_map_s = time.perf_counter() - started

    def api(texts, **params):
        times = []
        for q in texts:
            start = time.perf_counter()
            response = client.get("/api/search", {"q": q, "k": 10, **params})
            times.append(time.perf_counter() - start)
            assert response.status_code == 200 and len(response.json()["results"]) == 10, response.content[:300]
        return times

    client.get("/api/search", {"q": "warm up", "k": 10})
    hybrid = api(queries[:count])
    cached = api(queries[:count])  # the same texts again: query vectors cached, everything else done anew
    settings.RAG_SEARCH_BM25 = False
    dense_only = api(queries[count * 2 :])
    settings.RAG_SEARCH_BM25 = True
    row = {
        "chunks": size,
        "index": index.kind,
        "params": index.params.as_dict(),
        "recall_at_10_vs_exact": round(recall, 4),
        "exact_faiss_p50_ms": ms(exact_times, 50),
        "raw_faiss_p50_ms": ms(raw, 50),
        "raw_faiss_p99_ms": ms(raw, 99),
        "api_p50_ms": ms(hybrid, 50),
        "api_p99_ms": ms(hybrid, 99),
        "api_minus_raw_p50_ms": round(ms(hybrid, 50) - ms(raw, 50), 2),
        "api_cached_query_vector_p50_ms": ms(cached, 50),
        "api_dense_only_p50_ms": ms(dense_only, 50),
        "query_embedding_p50_ms": ms(embed, 50),
        "bm25_p50_ms": ms(lexical, 50),
        "owner_map_read_s": round(owner_map_s, 2),
        **build,
        "index_bytes_per_chunk": round(index_bytes / size, 1),
    }
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
