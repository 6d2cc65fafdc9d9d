"""Folder sync measured on a few hundred files with changes between runs (issue #31).

    .venv/bin/python bench/sync.py [--files 300] [--label NAME]

A folder of --files Markdown and text files in nested folders is synced into
a fresh data folder (ingestion/sync.py, in this process); between runs the
script changes files (new bytes), touches others (a new time, the same
bytes), moves and renames some across folders, deletes some and adds new
ones, keeping the truth of what it did. Each run's counts are checked
against that truth (none missed, none counted twice) and the collection
against the folder (every file one document with its bytes, no document
without a file). The time of a sync with nothing changed is set beside
the raw cost of reading and hashing every file (hashlib), what a sync
without the size-and-time check would pay. Documents are queued, not
parsed: this measures the sync, not ingestion (bench/ingest.py does).

Writes bench/results/sync-<label>.json and prints the table.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import machine  # noqa: E402
from bench.common import ROOT, setup_django  # noqa: E402

WORDS = "policy travel hotel refund leave budget approval invoice contract supplier training safety".split()


PAD_KB = 0  # --pad-kb: each file made this much larger (real documents weigh more than a page of words)


def text(rng: random.Random, n: int) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 400)))
    pad = ("\n" + "appendix " * 113) * (PAD_KB * 1024 // 1018) if PAD_KB else ""
    return f"# Document {n}\n\n{body}\n\nReference {n}-{rng.getrandbits(48):x}.\n{pad}"


def make_folder(root: Path, count: int, rng: random.Random) -> None:
    for n in range(count):
        folder = root / f"team-{n % 7}" / f"year-{2020 + n % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc-{n:04d}.{'md' if n % 3 else 'txt'}").write_text(text(rng, n))


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def mutate(root: Path, rng: random.Random, next_id: int) -> dict:
    """Change, touch, move, delete and add files; the counts a correct sync must report."""
    files = files_of(root)
    rng.shuffle(files)
    changed, touched, moved, deleted = files[:20], files[20:30], files[30:45], files[45:55]
    for path in changed:
        path.write_text(path.read_text() + "\nAmended.\n")
    for path in touched:
        os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    for i, path in enumerate(moved):
        target = root / "moved" / f"renamed-{next_id}-{i}{path.suffix}"
        target.parent.mkdir(exist_ok=True)
        shutil.move(path, target)
    for path in deleted:
        path.unlink()
    for n in range(next_id, next_id + 25):
        (root / "new").mkdir(exist_ok=True)
        (root / "new" / f"doc-{n:04d}.md").write_text(text(rng, n))
    unchanged = len(files) - len(changed) - len(moved) - len(deleted)
    return {"added": 25, "changed": 20, "renamed": 15, "withdrawn": 10, "unchanged": unchanged}


def consistent(root: Path, source) -> bool:
    """The collection equals the folder: every file is one document holding its bytes, and nothing more."""
    from ingestion.models import Document

    truth = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files_of(root)}
    rows = {row.path: row for row in source.files.select_related("document")}
    if set(rows) != set(truth):
        return False
    if any(row.document is None or row.document.sha256 != truth[path] for path, row in rows.items()):
        return False
    return Document.objects.filter(source=source).count() == len(truth)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--label", default="now")
    parser.add_argument("--pad-kb", type=int, default=0, help="Make each file this many KB larger.")
    args = parser.parse_args()
    global PAD_KB
    PAD_KB = args.pad_kb
    work = Path(tempfile.mkdtemp(prefix="rag-sync-bench-"))
    shares = work / "shares"
    root = shares / "policies"
    os.environ["RAG_SYNC_ROOTS"] = str(shares)
    setup_django(str(work / "data"))
    from ingestion import services, sync
    from ingestion.models import Source

    services.enqueue = lambda document_id: None  # queued, not parsed: the sync is what is measured
    rng = random.Random(31)
    make_folder(root, args.files, rng)
    source = Source.objects.create(name="bench", collection=services.get_collection(), location=str(root))

    runs = []

    def run(name: str, expected: dict | None, **options):
        started = time.perf_counter()
        result = sync.sync(source.pk, **options)
        seconds = time.perf_counter() - started
        found = {k: v for k, v in result.get("counts", {}).items() if v}
        want = {k: v for k, v in (expected or {}).items() if v}
        row = {
            "run": name,
            "seconds": round(seconds, 3),
            "counts": found,
            "expected": want if expected is not None else None,
            "exact": found == want if expected is not None else None,
            "state": result["state"],
            "consistent": consistent(root, source) if result["state"] == "ok" else None,
        }
        runs.append(row)
        print(f"{name}: {row}", file=sys.stderr)

    run("first sync", {"added": args.files})
    run("nothing changed", {"unchanged": args.files})
    started = time.perf_counter()
    for path in files_of(root):
        hashlib.sha256(path.read_bytes()).hexdigest()
    hash_all = time.perf_counter() - started
    next_id = args.files
    for round_ in range(1, 4):
        expected = mutate(root, rng, next_id)
        next_id += 25
        run(f"changes {round_}", expected)
    parked = root.with_name("parked")
    root.rename(parked)
    run("unmounted", None)
    parked.rename(root)
    run("mounted again", {"unchanged": len(files_of(root))})
    report = {
        "label": args.label,
        "machine": machine(),
        "files": args.files,
        "pad_kb": args.pad_kb,
        "runs": runs,
        "hash_every_file_seconds": round(hash_all, 3),
    }
    (ROOT / "bench" / "results" / f"sync-{args.label}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"## Folder sync, {args.files} files at the start, {args.pad_kb} KB of padding each\n")
    print("| run | seconds | counts | as expected | collection = folder |\n| --- | --- | --- | --- | --- |")
    for r in runs:
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items()) or r["state"]
        print(f"| {r['run']} | {r['seconds']} | {counts} | {r['exact']} | {r['consistent']} |")
    print(f"\nReading and hashing every file (hashlib, no database): {hash_all:.3f} s")


if __name__ == "__main__":
    main()
