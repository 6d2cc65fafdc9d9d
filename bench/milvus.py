"""The index on Milvus against FAISS, in one run (issue #32).

    .venv/bin/python bench/milvus.py quality demo|postgresql
    .venv/bin/python bench/milvus.py scale [--sizes 100000 1000000] [--queries 200]
    .venv/bin/python bench/milvus.py ingest [--workers 1 2] [--documents 24] [--pages 20]

quality: each corpus is ingested once (a fresh SQLite data folder, the FAISS
store), then the same chunks are indexed into Milvus (a milvus-lite server on
loopback, `rebuild_index`), and the labelled questions (the answerable ones
of bench/qa/<corpus>.jsonl, scored by document) are searched through both
stores by search.evaluate_retrieval: hit@1, hit@5 and recall@10 per part
(dev, test) and method (dense, BM25, hybrid). Same chunks, same embedder:
what differs is the store (its vector index and its BM25).

scale: synthetic embedding-like vectors (tests/vectors.py) in one
collection, searched through each store's own search call (Milvus with the
collection filter it gets in production): p50 and p95 latency and
recall@10 against exact search, once searches stop getting faster after a
flush (milvus-lite indexes sealed segments in the background; before that
it searches brute force, and that figure is kept too); the query encoder
(the packaged embedder on one query) is timed apart. FAISS is exact up to RAG_INDEX_EXACT_MAX
(100,000) and HNSW beyond, Milvus HNSW at every size, both M=32, efSearch 128.

ingest: generated PDFs uploaded at once, timed from the first upload to the
last document indexed, through 1 and 2 real Celery workers (solo pools, each
with its share of the cores), on PostgreSQL and Redis, for each store.

Writes bench/results/milvus-quality-<corpus>.json, milvus-scale.json and milvus-ingest.json.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import corpus_files, machine  # noqa: E402
from bench.common import ROOT, setup_django  # noqa: E402

QA = ROOT / "bench" / "qa"
RESULTS = ROOT / "bench" / "results"


def start_milvus(folder: Path):
    from tests import milvus

    folder.mkdir(parents=True, exist_ok=True)
    return milvus.start_server(folder / "data")


def labelled(corpus: str):
    from generation.evaluation import split_of
    from ingestion.models import Document
    from retrieval.evaluation import LabelledQuery

    ids = dict(Document.objects.values_list("original_filename", "pk"))
    rows = [json.loads(line) for line in open(QA / f"{corpus}.jsonl", encoding="utf-8") if line.strip()]
    parts = {"dev": [], "test": []}
    for row in rows:
        if row.get("answerable") and row.get("document") in ids:
            parts[split_of(row["id"])].append(
                LabelledQuery(row["question"], frozenset({ids[row["document"]]}), "document")
            )
    return parts


def scores(parts) -> dict:
    from retrieval.search import evaluate_retrieval

    found = {}
    for part, items in parts.items():
        found[part] = {}
        for k, name in ((1, "hit@1"), (5, "hit@5"), (10, "recall@10")):
            for method, metrics in evaluate_retrieval(items, k)["summary"].items():
                found[part].setdefault(method, {})[name] = round(metrics.as_dict()["recall"], 3)
    return found


def quality(corpus: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="rag-milvus-quality-"))
    server, uri = start_milvus(work / "milvus")
    try:
        return {"machine": machine(), "corpus": corpus, **quality_of(corpus, work / corpus, uri)}
    finally:
        from tests.milvus import stop

        stop(server)


def quality_of(corpus: str, data: Path, uri: str) -> dict:
    import os

    os.environ.pop("RAG_MILVUS_URI", None)
    setup_django(str(data))
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings

    from ingestion.models import Chunk
    from retrieval import indexing, stores
    from retrieval.embedding import get_embedder

    started = time.perf_counter()
    call_command("ingest", *map(str, corpus_files(corpus)), "--inline", stdout=sys.stderr)
    ingested = time.perf_counter() - started
    parts = labelled(corpus)
    row = {
        "chunks": Chunk.objects.count(),
        "questions": {p: len(q) for p, q in parts.items()},
        "ingest_s": round(ingested, 1),
    }
    row["faiss"] = scores(parts)
    with override_settings(RAG_MILVUS_URI=uri, RAG_MILVUS_PREFIX=f"bench_{corpus}"):
        started = time.perf_counter()
        indexing.rebuild_index()
        row["milvus_index_s"] = round(time.perf_counter() - started, 1)
        store = stores.get_store()
        store.flush()  # searched through its HNSW index, not brute force
        vectors = get_embedder().embed_queries([q.query for q in parts["dev"][:10]])
        row["milvus_settle_s"] = _settle(lambda v: store.current().search(v, 10), vectors)
        row["milvus"] = scores(parts)
    assert settings.RAG_MILVUS_URI == ""
    for part in parts:
        for method in row["faiss"][part]:
            line = "  ".join(
                f"{name} {row['faiss'][part][method][name]:.3f}/{row['milvus'][part][method][name]:.3f}"
                for name in ("hit@1", "hit@5", "recall@10")
            )
            print(f"{corpus:10} {part:4} {method:7} (FAISS/Milvus) {line}", flush=True)
    return row


def ingest(workers: list[int], documents: int, pages: int) -> dict:
    """Documents per second through 1 and 2 real workers (solo pools, on
    PostgreSQL and Redis), each store: FAISS (index writes serialised by its
    lock) and Milvus (none). Each run is a process of its own (its own settings)."""
    import subprocess

    from tests.milvus import stop

    work = Path(tempfile.mkdtemp(prefix="rag-milvus-ingest-"))
    server, uri = start_milvus(work / "milvus")
    results = {"machine": machine(), "documents": documents, "pages": pages, "runs": []}
    try:
        for store in ("faiss", "milvus"):
            for count in workers:
                database = f"rag_bench_{store}_{count}"
                subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", database], check=True)
                subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
                command = [sys.executable, __file__, "ingest-one", store, str(count), database]
                command += [str(documents), str(pages), uri, str(work)]
                run = subprocess.run(command, capture_output=True, text=True)
                if run.returncode:
                    raise RuntimeError(run.stderr[-3000:])
                row = json.loads(run.stdout.strip().splitlines()[-1])
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
    finally:
        stop(server)
    return results


def ingest_one(store: str, count: int, database: str, documents: int, pages: int, uri: str, work: str) -> None:
    """One run of ingest() in a process of its own (its own settings)."""
    import os

    from bench.common import start_worker, stop
    from bench.ingest import make_large_pdf

    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    os.environ["CELERY_QUEUE"] = database  # its own queues on the shared Redis
    if store == "milvus":
        os.environ["RAG_MILVUS_URI"] = uri
        os.environ["RAG_MILVUS_PREFIX"] = database
    else:
        os.environ.pop("RAG_MILVUS_URI", None)
    # Each worker its share of the cores (torch takes them all by default:
    # two workers would each run two threads on two cores).
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
    data = setup_django(str(Path(work) / database))
    from ingestion import services, sweeps
    from ingestion.models import Chunk, Document

    files = [make_large_pdf(data / f"doc-{n}.pdf", pages, tag=f"Edition {n}") for n in range(documents)]
    warm_files = [make_large_pdf(data / f"warm-{n}.pdf", 2, tag=f"Warm {n}") for n in range(count)]
    workers = [start_worker(data / f"worker-{n}.log", name=f"-{n}") for n in range(count)]
    try:
        warm = []
        for path in warm_files:  # models loaded before the clock starts
            with open(path, "rb") as handle:
                warm.append(services.add_document(handle, path.name, collection=services.get_collection())[0])
        sweeps.wait_for([doc.pk for doc in warm], timeout=600)
        started = time.perf_counter()
        ids = []
        for path in files:
            with open(path, "rb") as handle:
                ids.append(services.add_document(handle, path.name, collection=services.get_collection())[0].pk)
        done = sweeps.wait_for(ids, timeout=3600, poll=1.0)
        seconds = time.perf_counter() - started
        assert all(doc.status == Document.Status.INDEXED for doc in done), [doc.error for doc in done]
        passages = Chunk.objects.filter(document_id__in=ids).count()
    finally:
        for worker in workers:
            stop(worker)
    row = {
        "store": store,
        "workers": count,
        "seconds": round(seconds, 1),
        "documents_per_s": round(documents / seconds, 3),
        "passages_per_s": round(passages / seconds, 1),
    }
    print(json.dumps(row))


def main():
    if sys.argv[1:2] == ["ingest-one"]:
        store, count, database, documents, pages, uri, work = sys.argv[2:9]
        return ingest_one(store, int(count), database, int(documents), int(pages), uri, work)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="part", required=True)
    q = sub.add_parser("quality")
    q.add_argument("corpus", choices=["demo", "postgresql"])
    s = sub.add_parser("scale")
    s.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    s.add_argument("--queries", type=int, default=200)
    i = sub.add_parser("ingest")
    i.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    i.add_argument("--documents", type=int, default=24)
    i.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    if args.part == "quality":
        results = quality(args.corpus)
    elif args.part == "ingest":
        results = ingest(args.workers, args.documents, args.pages)
    else:
        results = scale(args.sizes, args.queries)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"milvus-{args.part}{'-' + args.corpus if args.part == 'quality' else ''}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(out)


def scale(sizes: list[int], queries: int) -> dict:
    from tests.milvus import stop
    from tests.vectors import embedding_like

    work = Path(tempfile.mkdtemp(prefix="rag-milvus-scale-"))
    setup_django(str(work / "site"))
    server, uri = start_milvus(work / "milvus")
    from django.conf import settings

    from retrieval import milvus_store, stores
    from retrieval.embedding import get_embedder
    from retrieval.faiss_index import VectorIndex
    from retrieval.snapshots import IndexStore

    results = {"machine": machine(), "queries": queries, "sizes": []}
    embedder = get_embedder()
    embedder.embed_queries(["warm up"])
    encode = [timed(embedder.embed_queries, [f"what is the fee for card {i}?"]) for i in range(50)]
    results["query_encoder_ms"] = {"p50": ms(encode, 50), "p95": ms(encode, 95)}
    vectors, centers = embedding_like(max(sizes), 384, seed=0)
    asked, _ = embedding_like(queries, 384, seed=1, centers=centers)
    try:
        for size in sizes:
            data, ids = vectors[:size], np.arange(1, size + 1, dtype=np.int64)
            exact = _exact(data, asked, 10)
            row = {"passages": size}
            # FAISS, as the product builds it at this size.
            faiss_store = IndexStore(work / f"faiss-{size}", 384, "bench", False, stores.index_params(size))
            started = time.perf_counter()
            with faiss_store.write(fresh=True, params=stores.index_params(size)) as snapshot:
                snapshot.vectors.add(ids, data)
            row["faiss"] = {"kind": faiss_store.current().kind, "build_s": round(time.perf_counter() - started, 1)}
            index: VectorIndex = faiss_store.current()
            row["faiss"].update(_measure(lambda v, index=index: index.search(v, 10)[1][0], asked, exact))
            # Milvus: the same vectors, one collection, filtered as a search is.
            store = milvus_store.MilvusStore(
                lambda: milvus_store.client(uri),
                f"scale_{size}",
                384,
                "bench",
                "text",
                lambda chunk_ids: {pk: (pk // 1000, 1) for pk in chunk_ids},
                hnsw_m=settings.RAG_HNSW_M,
                ef_construction=settings.RAG_HNSW_EF_CONSTRUCTION,
                ef_search=settings.RAG_HNSW_EF_SEARCH,
            )
            started = time.perf_counter()
            for start in range(0, size, 50_000):
                with store.write() as snapshot:
                    part = slice(start, min(start + 50_000, size))
                    snapshot.vectors.add(ids[part], data[part])
                    snapshot.bm25.add(ids[part].tolist(), [f"passage {pk}" for pk in ids[part]])
                print(f"  milvus {size}: {min(start + 50_000, size)} written", flush=True)
            written = time.perf_counter() - started
            view = store.current()
            search = lambda v, view=view: view.search(v, 10, collections=[1])[1][0]  # noqa: E731
            unsealed = _measure(search, asked[:20], exact[:20])["p50_ms"]
            store.flush()
            settle = _settle(search, asked[:20])
            row["milvus"] = {
                "kind": "HNSW (milvus-lite)",
                "build_s": round(written, 1),
                "p50_ms_before_flush": unsealed,
                "settle_s": settle,
            }
            row["milvus"].update(_measure(search, asked, exact))
            results["sizes"].append(row)
            print(json.dumps(row), flush=True)
            store.drop()
    finally:
        stop(server)
    return results


def _settle(search, asked, limit: float = 300) -> float:
    """Seconds until searches stop getting faster after a flush (milvus-lite
    builds its segments' indexes and compacts them in the background)."""
    started, last = time.perf_counter(), None
    while time.perf_counter() - started < limit:
        now = float(np.median([timed(search, vector) for vector in asked]))
        if last is not None and now > 0.9 * last:
            break
        last = now
        time.sleep(10)
    return round(time.perf_counter() - started, 1)


def _exact(data: np.ndarray, asked: np.ndarray, k: int) -> list[set[int]]:
    found = []
    for start in range(0, len(asked), 50):
        scores = asked[start : start + 50] @ data.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        found.extend({int(i) + 1 for i in row} for row in top)
    return found


def _measure(search, asked, exact) -> dict:
    times, recalls = [], []
    for vector, truth in zip(asked, exact):
        started = time.perf_counter()
        got = search(vector)
        times.append(time.perf_counter() - started)
        recalls.append(len(truth & {int(i) for i in got if i >= 0}) / len(truth))
    return {"p50_ms": ms(times, 50), "p95_ms": ms(times, 95), "recall@10": round(float(np.mean(recalls)), 3)}


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def ms(values, q) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2)


if __name__ == "__main__":
    main()
