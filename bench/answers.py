"""Answer quality on the labelled sets, through the real answer path.

    .venv/bin/python bench/answers.py [demo|postgresql ...] [--label NAME] [-k N] [--set SET] [--split test]

For each corpus: a data folder of its own under $TMPDIR (kept, so a second
run reuses the ingested corpus), the corpus ingested in this process, one
warm-up answer (the models load), then `evaluate_answers` on
bench/qa/<corpus>.jsonl. Writes bench/results/answers-<corpus>-<label>.json
(summary, machine, a row per question) and prints the table.

Corpora:
  demo        the repository's demo/ folder (what `make run` ingests)
  postgresql  Debian's PostgreSQL 15 HTML documentation, 301 pages
              (`apt-get install postgresql-doc-15`; see bench/qa/README.md)
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, setup_django  # noqa: E402

PG_HTML = Path("/usr/share/doc/postgresql-doc-15/html")
PG_PATTERNS = [
    "sql-*.html",
    "runtime-config-*.html",
    "datatype-*.html",
    "app-*.html",
    "ddl-*.html",
    "indexes-*.html",
    "auth-*.html",
    "backup-*.html",
    "routine-*.html",
    "client-auth*.html",
]


def corpus_files(name: str) -> list[Path]:
    if name == "demo":
        return sorted(p for p in (ROOT / "demo").iterdir() if p.is_file())
    if name == "postgresql":
        if not PG_HTML.is_dir():
            sys.exit(f"{PG_HTML} is missing: apt-get install postgresql-doc-15")
        return sorted({p for pattern in PG_PATTERNS for p in PG_HTML.glob(pattern)})
    sys.exit(f"unknown corpus {name!r}: demo or postgresql")


def machine() -> dict:
    flags, model = set(), ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "flags": sorted(f for f in flags if f.startswith(("avx", "amx"))),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="*", default=["demo", "postgresql"])
    parser.add_argument("--label", default="now", help="Names the result file (before, after, ...).")
    parser.add_argument("-k", type=int, help="Passages retrieved per answer.")
    parser.add_argument("--limit", type=int, help="Only the first N questions (a quick latency comparison).")
    parser.add_argument("--set", dest="qa", help="The labelled set bench/qa/SET.jsonl (default: the corpus's name).")
    parser.add_argument(
        "--split",
        choices=["dev", "test", "all"],
        default="all",
        help="The set's dev part (tune) or test part (report).",
    )
    args = parser.parse_args()
    if len(args.corpora) > 1:  # one Django set-up per process: run each corpus in its own
        import subprocess

        for name in args.corpora:
            extra = (
                ["--label", args.label]
                + (["-k", str(args.k)] if args.k else [])
                + (["--limit", str(args.limit)] if args.limit else [])
                + ["--split", args.split]
                + (["--set", args.qa] if args.qa else [])
            )
            subprocess.run([sys.executable, __file__, name, *extra], check=True)
        return
    name = args.corpora[0]
    files = corpus_files(name)
    setup_django(str(Path(tempfile.gettempdir()) / f"rag-answers-{name}"))
    from django.core.management import call_command

    from generation import evaluation, services

    call_command("ingest", *map(str, files), "--inline", stdout=sys.stderr)
    labelled = args.qa or name
    with open(ROOT / "bench" / "qa" / f"{labelled}.jsonl", encoding="utf-8") as handle:
        questions = evaluation.in_split(evaluation.parse_questions(handle), args.split)[: args.limit]
    services.ask("What is this collection about?")  # warm: the models load once
    report = services.evaluate_answers(
        questions, k=args.k, progress=lambda done, total: print(f"\r{done}/{total}", end="", file=sys.stderr)
    )
    print(file=sys.stderr)
    # Calibration: what each threshold on the gate's confidence would give on
    # this set (the decision "not in the documents" depends on nothing else).
    calibration = evaluation.threshold_table(report["questions"], [t / 100 for t in range(50, 100, 5)])
    rows = report["questions"]
    report["by_split"] = {
        split: evaluation.summarise([r for r in rows if r["split"] == split]) for split in evaluation.SPLITS
    }
    report = {
        "corpus": name,
        "set": labelled,
        "split": args.split,
        "documents": len(files),
        "label": args.label,
        "machine": machine(),
        **report,
        "calibration": calibration,
    }
    out = ROOT / "bench" / "results" / f"answers-{labelled}-{args.split}-{args.label}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"## {name} ({len(files)} documents), {args.label}\n")
    print(evaluation.format_table(report["summary"]))
    if args.split == "all":
        print("\n### test part only\n")
        print(evaluation.format_table(report["by_split"]["test"]))
    print(
        "\n| threshold | false abstention | abstention (unanswerable) | not-found precision |\n| --- | --- | --- | --- |"
    )
    for row in calibration:
        print(f"| {row['threshold']} | {row['false_abstention']} | {row['abstained']} | {row['not_found_precision']} |")


if __name__ == "__main__":
    main()
