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
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import setup_django, start_worker, stop  # noqa: E402

PARAGRAPH = (
    "{tag} section {p}.{i}: the cardholder agreement explains how interest accrues on purchases, how the "
    "minimum payment is computed from the statement balance, and which fees apply when a payment is late. "
    "Rule {p}.{i} also covers foreign transactions, cash withdrawals and the dispute process for charges."
)


def make_large_pdf(path: Path, pages: int, tag: str = "Manual") -> Path:
    from tests.pdfs import make_pdf

    texts = ["\n\n".join(PARAGRAPH.format(tag=tag, p=p, i=i) for i in range(7)) for p in range(pages)]
    return make_pdf(path, texts, title="Benchmark manual")


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side; the median counts")
    args = parser.parse_args()
    data = setup_django()

    from django.conf import settings
    from django.utils import timezone

    from ingestion import services, sweeps
    from ingestion.chunking import chunk_pages
    from ingestion.models import Document
    from ingestion.parsing import parse_file
    from ingestion.tokens import count_tokens
    from retrieval.embedding import get_embedder

    # A distinct file per timed run (the same bytes would be deduplicated).
    pdfs = [make_large_pdf(data / f"large-{r}.pdf", args.pages, tag=f"Edition {r}") for r in range(args.repeat)]
    pdf = pdfs[0]
    # Both sides are timed warm: models loaded and kernels built for these shapes.
    warm_pdf = make_large_pdf(data / "warm.pdf", 12)

    # 1. Parsing alone.
    parse_seconds = median(timed(lambda: parse_file(pdf, "large.pdf")) for _ in range(args.repeat))
    parsed = parse_file(pdf, "large.pdf")
    specs = chunk_pages(parsed.pages, count_tokens, settings.RAG_CHUNK_TOKENS, settings.RAG_CHUNK_OVERLAP)
    texts = [s.text for s in specs]

    # 2. The raw embedder on the same chunks (warmed up first).
    embedder = get_embedder()
    embedder.embed_passages(
        [
            s.text
            for s in chunk_pages(
                parse_file(warm_pdf, "warm.pdf").pages,
                count_tokens,
                settings.RAG_CHUNK_TOKENS,
                settings.RAG_CHUNK_OVERLAP,
            )
        ]
    )
    raw_seconds = median(timed(lambda: embedder.embed_passages(texts)) for _ in range(args.repeat))

    # 3. End to end through a real worker (warmed up on a small document first).
    worker = start_worker(data / "worker.log")
    try:
        with open(warm_pdf, "rb") as handle:
            doc, _ = services.add_document(handle, "warm.pdf", collection=services.get_collection())
        sweeps.wait_for([doc.pk], timeout=300)
        runs = []
        for number, path in enumerate(pdfs):
            # Timed from the upload to the worker's own indexed_at stamp; this
            # process polls rarely so as not to take CPU from the worker.
            start = timezone.now()
            with open(path, "rb") as handle:
                doc, _ = services.add_document(handle, f"large-{number}.pdf", collection=services.get_collection())
            [doc] = sweeps.wait_for([doc.pk], timeout=1800, poll=1.0)
            runs.append((doc.indexed_at - start).total_seconds())
            assert doc.status == Document.Status.INDEXED, doc.error
            assert abs(doc.chunks_total - len(texts)) <= len(texts) // 50, (doc.chunks_total, len(texts))
        pipeline_seconds = median(runs)
    finally:
        stop(worker)

    result = {
        "pages": len(parsed.pages),
        "runs_per_side": args.repeat,
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
