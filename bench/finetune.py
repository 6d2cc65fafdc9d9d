"""Fine-tuning the domain retriever (issue #6) on a real corpus: a few hundred
man pages of this machine, rendered to Markdown.

    RAG_GENERATOR_THREADS=1 .venv/bin/python bench/finetune.py [--docs 300] [--llm-queries 120]
        [--ict-queries 1500] [--max-steps 400] [--minutes 7] [--ablation] [--ablation-minutes 3.5] [--reuse]

(One llama.cpp thread: on 2 cores shared with other work, two threads wait on
each other; 2.8 s per question against 14 s measured here.)

Everything lives in a throwaway data folder (RAG_DATA_DIR, default
/tmp/ftbench): the corpus, the SQLite database, the indexes, the retriever
versions. The corpus is ingested with `manage.py ingest --inline`, then the
pipeline of retrieval/finetune/ runs with a CPU budget: split, synthetic
queries (the packaged SmolLM2 writes questions; ICT sentences), hard
negatives, training, held-out evaluation, switch.

Held-out queries of three sources are scored: the LLM's questions and ICT
sentences on held-out passages (synthetic, like the training data), and
"labelled": each held-out man page's own one-line description from its NAME
section (`ls - list directory contents` -> "list directory contents"), which
is removed from the page before ingestion, so it is a query written by a
person that no passage contains word for word. A query finds its page when
any of the page's passages is in the top 10.

--ablation trains two more models on the same prepared data, ICT pairs only
and LLM pairs only, with the same step budget, and scores them alike.

Writes bench/results/finetune.json.
"""

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import setup_django  # noqa: E402

MAN_DIR = Path("/usr/share/man/man1")
PER_FAMILY = 15
SECTION = re.compile(r"^[A-Z][A-Z0-9 ,/&()'-]*$")


def render(page: Path) -> str:
    """The man page as plain text, one line per paragraph (a very wide page)."""
    env = {**os.environ, "MANWIDTH": "2000", "MAN_KEEP_FORMATTING": "0", "LC_ALL": "C.UTF-8"}
    man = subprocess.run(["man", "-l", str(page)], capture_output=True, env=env, timeout=30)
    text = subprocess.run(["col", "-bx"], input=man.stdout, capture_output=True, timeout=30).stdout
    return text.decode("utf-8", "replace")


def to_markdown(name: str, text: str) -> tuple[str, str] | None:
    """(Markdown without the NAME section, the NAME section's description), or None."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 6:
        return None
    lines = lines[1:-1]  # the running header and footer
    out, description, section = [f"# {name}", ""], None, None
    for line in lines:
        stripped = line.strip()
        if line and not line[0].isspace() and SECTION.match(stripped):
            section = stripped
            if section != "NAME":
                out += ["", f"## {section}", ""]
            continue
        if section == "NAME":
            if stripped and description is None:
                parts = re.split(r"\s+\\?[-\u2010\u2013\u2014]+\s+", stripped, maxsplit=1)
                description = parts[1].strip() if len(parts) == 2 else ""
            continue
        if stripped.startswith(("#", "|")):
            stripped = "\\" + stripped  # a shell comment is not a heading, nor a pipe a table
        out.append(re.sub(r"[ \t]{2,}", "  ", stripped))
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"
    if not description or len(description.split()) < 3:
        return None
    return body, description


def build_corpus(folder: Path, docs: int, seed: int) -> list[dict]:
    """Render a seeded sample of man pages; keep `docs` with a usable
    description (unique) and 1.5-12 KB of text, at most PER_FAMILY of one
    family (git-*, openssl-*, ...). The Google Cloud SDK's 16,000 near-identical
    gcloud pages are left out: alpha, beta and GA variants of one command would
    make most descriptions ambiguous."""
    pages = sorted(
        p for p in MAN_DIR.glob("*.1*.gz") if p.is_file() and not p.is_symlink() and not p.name.startswith("gcloud")
    )
    random.Random(seed).shuffle(pages)
    folder.mkdir(parents=True, exist_ok=True)
    kept, seen, families = [], set(), {}
    for page in pages:
        if len(kept) >= docs:
            break
        family = re.split(r"[_.-]", page.name)[0]
        if families.get(family, 0) >= PER_FAMILY:
            continue
        with gzip.open(page, "rb") as handle:
            if handle.read(200).lstrip().startswith(b".so "):
                continue  # an alias of another page
        name = page.name.split(".1")[0]
        converted = to_markdown(name, render(page))
        if converted is None:
            continue
        body, description = converted
        key = description.lower()
        if not 1500 <= len(body) <= 12000 or key in seen or name.lower() in key.split():
            continue
        seen.add(key)
        families[family] = families.get(family, 0) + 1
        filename = re.sub(r"[^A-Za-z0-9._+-]", "_", name) + ".md"
        (folder / filename).write_text(body)
        kept.append({"page": page.name, "file": filename, "description": description})
    return kept


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/ftbench")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--llm-queries", type=int, default=150)
    parser.add_argument("--ict-queries", type=int, default=2000)
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--ablation", action="store_true", help="Also train on ICT pairs only and on LLM pairs only.")
    parser.add_argument(
        "--ablation-minutes", type=float, help="Training minutes of each ablation model (default --minutes)."
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the corpus and database of an earlier run in --data; drop its retriever versions.",
    )
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "finetune.json"))
    args = parser.parse_args()

    data = Path(args.data)
    listing = data / "corpus.json"
    timings = {}
    if args.reuse and listing.exists():
        corpus = json.loads(listing.read_text())
        timings = json.loads((data / "timings.json").read_text())
        setup_django(str(data))
        _start_over()
    else:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        started = time.perf_counter()
        corpus = build_corpus(data / "corpus", args.docs, args.seed)
        timings["build_corpus"] = round(time.perf_counter() - started, 1)
        print(f"Corpus: {len(corpus)} man pages in {timings['build_corpus']} s", flush=True)
        setup_django(str(data))
        env = {**os.environ, "RAG_DATA_DIR": str(data)}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "ingest", "--inline", str(data / "corpus")],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        timings["ingest"] = round(time.perf_counter() - started, 1)
        listing.write_text(json.dumps(corpus))
        (data / "timings.json").write_text(json.dumps(timings))
    # Code and settings are read now, once: a checkout edited while this runs cannot mix them.
    import retrieval.finetune.train  # noqa: F401
    from generation.engines import get_engine

    get_engine()

    from ingestion.models import Chunk, Document
    from retrieval.evaluation import LabelledQuery
    from retrieval.finetune import pipeline

    ids = dict(Document.objects.filter(status="indexed").values_list("original_filename", "pk"))
    labelled = [
        LabelledQuery(item["description"], frozenset({ids[item["file"]]}), "document")
        for item in corpus
        if item["file"] in ids
    ]
    chunks = Chunk.objects.filter(document__status="indexed").count()
    print(f"Ingested {len(ids)} documents, {chunks} passages in {timings['ingest']} s", flush=True)

    options = pipeline.Options.from_settings(
        llm_queries=args.llm_queries,
        ict_queries=args.ict_queries,
        max_steps=args.max_steps,
        max_minutes=args.minutes,
        seed=args.seed,
        labelled=labelled,
        switch=False,
    )

    state = {"stage": None, "at": 0.0}

    def show(stage, done, total):
        now = time.monotonic()
        if stage != state["stage"] or now - state["at"] > 20 or done == total:
            state["stage"], state["at"] = stage, now
            print(f"  {stage} {done}/{total}", flush=True)

    from retrieval import versions

    started = time.perf_counter()
    prepared = pipeline.prepare(options, show)
    version = versions.new_version(options.base_model)
    pipeline.claim(version.pk)
    version = pipeline.run(version.pk, options, show, prepared=prepared)
    timings["pipeline"] = round(time.perf_counter() - started, 1)
    report = json.loads((Path(version.path).parent / "report.json").read_text())
    write(args, corpus, ids, chunks, timings, report, version, None)
    ablated = ablation(options, prepared, args) if args.ablation else None
    write(args, corpus, ids, chunks, timings, report, version, ablated)
    if report["decision"]["better"]:
        started = time.perf_counter()
        version = versions.switch_to(version.pk, progress=lambda done, total: show("switch", done, total))
        timings["switch"] = round(time.perf_counter() - started, 1)
    result = write(args, corpus, ids, chunks, timings, report, version, ablated)
    from retrieval.finetune.evaluate import format_table

    print(format_table(result["evaluation"]["methods"]))
    for source, methods in result["evaluation"]["by_source"].items():
        print(f"\n{source} ({methods['queries']} queries)")
        print(format_table({k: v for k, v in methods.items() if k != "queries"}))
    print(json.dumps({k: result[k] for k in ("timings_s", "pairs_by_method", "decision", "switched")}, indent=1))
    print(f"Wrote {args.output}")


def write(args, corpus, ids, chunks, timings, report, version, ablated) -> dict:
    from django.conf import settings

    result = {
        "corpus": {
            "source": "man pages (section 1) of this machine, NAME section removed",
            "documents": len(ids),
            "passages": chunks,
            **report["corpus"],
        },
        "options": report["options"],
        "timings_s": {
            **timings,
            "stages": version.metrics["durations"],
            "generator_threads": settings.RAG_GENERATOR_THREADS,
        },
        "pairs_by_method": report["pairs_by_method"],
        "triplets": report["triplets"],
        "heldout_queries_by_source": report["heldout_queries_by_source"],
        "llm_filter": report["llm_filter"],
        "mining": report["mining"],
        "training": report["training"],
        "evaluation": report["evaluation"],
        "decision": report["decision"],
        "switched": version.is_active,
        "version": version.name,
    }
    if ablated:
        result["ablation"] = ablated
    result["pages"] = sorted(item["page"] for item in corpus)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def ablation(options, prepared, args) -> dict:
    """The same prepared data (split, pairs, negatives, held-out queries),
    trained on one query source at a time, with the same budget."""
    from retrieval.embedding import get_embedder
    from retrieval.finetune import evaluate
    from retrieval.finetune.train import train

    documents = {p.chunk_id: p.document_id for p in prepared.heldout_passages}
    out = {}
    for method in ("ict", "llm"):
        triplets = [t for t in prepared.triplets if t.pair.method == method]
        folder = Path(args.data) / "ablation" / method
        started = time.perf_counter()
        trained = train(
            options.base_model,
            [(t.pair.query, t.pair.positive, t.negative.text) for t in triplets],
            folder,
            max_steps=options.max_steps,
            max_minutes=args.ablation_minutes or options.max_minutes,
            batch_size=options.batch_size,
            seed=options.seed,
        )
        result = evaluate.evaluate(
            prepared.eval_queries, prepared.eval_passages, {method: get_embedder(str(folder))}, documents=documents
        )
        out[f"{method}_only"] = {
            "triplets": len(triplets),
            "training": trained.as_dict(),
            "seconds": round(time.perf_counter() - started, 1),
            "methods": {k: v for k, v in result["methods"].items() if k.endswith("-dense")},
            "by_source": {
                s: {k: v for k, v in m.items() if k.endswith("-dense")} for s, m in result["by_source"].items()
            },
        }
        print(f"ablation {method}: {out[f'{method}_only']['methods']}", flush=True)
    return out


def _start_over():
    """Back to the base model, with no retriever versions: for --reuse."""
    from django.conf import settings

    from retrieval import versions
    from retrieval.models import RetrieverVersion

    base = versions.base_version()
    if not base.is_active:
        versions.switch_to(base.pk)
    RetrieverVersion.objects.exclude(name="base").delete()
    shutil.rmtree(settings.RAG_RETRIEVER_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
