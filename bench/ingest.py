"""Ingestion throughput, end to end through a real worker, against the raw
embedder on the same chunks in the same run; and PDF parsing pages/second.

    .venv/bin/python bench/ingest.py [--pages 150]

Prints a Markdown table and writes bench/results/ingest.json.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django, start_worker, stop  # noqa: E402

PARAGRAPH = (
    "Section {p}.{i}: the cardholder agreement explains how interest accrues on purchases, how the "
    "minimum payment is computed from the statement balance, and which fees apply when a payment is late. "
    "Rule {p}.{i} also covers foreign transactions, cash withdrawals and the dispute process for charges."
)


def make_large_pdf(path: Path, pages: int) -> Path:
    from tests.pdfs import make_pdf

    texts = ["\n\n".join(PARAGRAPH.format(p=p, i=i) for i in range(7)) for p in range(pages)]
    return make_pdf(path, texts, title="Benchmark manual")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=150)
    args = parser.parse_args()
    data = setup_django()

    from django.conf import settings

    from ingestion import services
    from ingestion.chunking import chunk_pages
    from ingestion.models import Document
    from ingestion.parsing import parse_file
    from ingestion.tokens import count_tokens
    from retrieval.embedding import get_embedder

    pdf = make_large_pdf(data / "large.pdf", args.pages)
    # Both sides are timed warm: models loaded and kernels built for these shapes.
    warm_pdf = make_large_pdf(data / "warm.pdf", 12)

    # 1. Parsing alone.
    start = time.perf_counter()
    parsed = parse_file(pdf, "large.pdf")
    parse_seconds = time.perf_counter() - start
    specs = chunk_pages(parsed.pages, count_tokens, settings.RAG_CHUNK_TOKENS, settings.RAG_CHUNK_OVERLAP)
    texts = [s.text for s in specs]

    # 2. The raw embedder on the same chunks (warmed up first).
    embedder = get_embedder()
    embedder.embed_passages([s.text for s in chunk_pages(parse_file(warm_pdf, "warm.pdf").pages, count_tokens,
                                                         settings.RAG_CHUNK_TOKENS, settings.RAG_CHUNK_OVERLAP)])
    start = time.perf_counter()
    embedder.embed_passages(texts)
    raw_seconds = time.perf_counter() - start

    # 3. End to end through a real worker (warmed up on a small document first).
    worker = start_worker(data / "worker.log")
    try:
        with open(warm_pdf, "rb") as handle:
            doc, _ = services.add_document(handle, "warm.pdf", collection=services.get_collection())
        services.wait_for([doc.pk], timeout=300)
        start = time.perf_counter()
        with open(pdf, "rb") as handle:
            doc, _ = services.add_document(handle, "large.pdf", collection=services.get_collection())
        [doc] = services.wait_for([doc.pk], timeout=1800, poll=0.05)
        pipeline_seconds = time.perf_counter() - start
    finally:
        stop(worker)
    assert doc.status == Document.Status.INDEXED, doc.error
    assert doc.chunks_total == len(texts), (doc.chunks_total, len(texts))

    result = {
        "pages": len(parsed.pages),
        "chunks": len(texts),
        "embedder_dtype": embedder.dtype,
        "parse_pages_per_second": round(len(parsed.pages) / parse_seconds, 1),
        "raw_embed_chunks_per_second": round(len(texts) / raw_seconds, 1),
        "pipeline_chunks_per_second": round(len(texts) / pipeline_seconds, 1),
        "pipeline_over_raw": round(pipeline_seconds / raw_seconds, 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| measure | value |\n| --- | --- |")
    for key, value in result.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
