"""Search latency at scale: raw FAISS against GET /api/search through the
whole stack (auth, throttling, query embedding, dense + BM25 fusion, the
permission filter, serialisation), in the same run.

    .venv/bin/python bench/search.py [--sizes 10000 100000] [--queries 200]

For each size, synthetic 384-d unit vectors (and short texts for BM25) are
written as real Chunk rows and index snapshots. Reports p50/p99 of both
paths, the index build time and the index bytes per chunk; writes
bench/results/search.json.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django  # noqa: E402

WORDS = ("card fee annual gold silver platinum travel hotel claim receipt insurance lounge interest rate transfer "
         "pin branch account statement limit payment reward point flight booking policy refund dispute").split()


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    setup_django()

    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from ingestion import services as ingestion
    from ingestion.models import Chunk, Document
    from retrieval.embedding import get_embedder
    from retrieval.services import get_store

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    from django.conf import settings

    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] = "1000000/min"
    embedder = get_embedder()
    rng = np.random.default_rng(0)
    random.seed(0)
    collection = ingestion.get_collection()
    queries = [" ".join(random.choices(WORDS, k=6)) for _ in range(args.queries)]
    results = []
    total = 0
    for size in args.sizes:
        # Rows: one indexed document per 1,000 chunks.
        add = size - total
        docs = Document.objects.bulk_create(
            Document(collection=collection, title=f"Synthetic {total + i}", original_filename=f"synthetic-{total + i}.txt",
                     file=f"synthetic/{total + i}.txt", sha256=f"{total + i:064d}", status="indexed")
            for i in range(0, add, 1000)
        )
        texts = [" ".join(random.choices(WORDS, k=40)) for _ in range(add)]
        rows = Chunk.objects.bulk_create(
            (Chunk(document=docs[i // 1000], ordinal=i % 1000, text=texts[i], char_start=0, char_end=len(texts[i]),
                   content_hash=f"{total + i:064x}") for i in range(add)),
            batch_size=5000,
        )
        vectors = rng.standard_normal((add, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        start = time.perf_counter()
        with get_store().write() as snapshot:
            snapshot.vectors.add([c.pk for c in rows], vectors)
            snapshot.bm25.add([c.pk for c in rows], texts)
        build_seconds = time.perf_counter() - start
        total = size
        index = get_store().current()
        get_store().current_bm25()
        folder = Path(settings.RAG_INDEX_DIR)
        index_bytes = sum(p.stat().st_size for p in folder.glob(f"{json.loads((folder / 'manifest.json').read_text())['file']}*"))

        query_vectors = embedder.embed_queries(queries)
        raw = []
        for vector in query_vectors:
            t = time.perf_counter()
            index.search(vector, 10)
            raw.append(time.perf_counter() - t)
        client.get("/api/search", {"q": queries[0], "k": 10})  # warm
        api = []
        for q in queries:
            t = time.perf_counter()
            response = client.get("/api/search", {"q": q, "k": 10})
            api.append(time.perf_counter() - t)
            assert response.status_code == 200 and len(response.json()["results"]) == 10
        row = {
            "chunks": size,
            "raw_faiss_p50_ms": round(percentile(raw, 50), 2),
            "raw_faiss_p99_ms": round(percentile(raw, 99), 2),
            "api_p50_ms": round(percentile(api, 50), 2),
            "api_p99_ms": round(percentile(api, 99), 2),
            "api_minus_raw_p50_ms": round(percentile(api, 50) - percentile(raw, 50), 2),
            "snapshot_write_s": round(build_seconds, 2),
            "index_bytes_per_chunk": round(index_bytes / size, 1),
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
