"""Answers per second with 1 and with 8 concurrent askers, against a warm
server started as `make run` starts it (gunicorn, 1 worker, 12 threads) on
the demo corpus; one user per asker (the per-user answer slots do not refuse).

    .venv/bin/python bench/load.py [--askers 1 8] [--per-asker 6] [--label NAME]

Uses the data folder bench/answers.py leaves ($TMPDIR/rag-answers-demo, the
demo corpus ingested; run that first). Questions: the answerable ones of
bench/qa/demo.jsonl and bench/qa/demo-parts.jsonl, in turn. Writes
bench/results/load-<label>.json and prints the table.
"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, setup_django  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ask(url: str, token: str, question: str) -> float:
    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(
        url, body, {"Content-Type": "application/json", "Authorization": f"Token {token}"}, method="POST"
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
    return time.perf_counter() - started


def run(url: str, tokens: list[str], questions: list[str], per_asker: int) -> dict:
    seconds, errors = [], []

    def asker(n: int):
        for i in range(per_asker):
            try:
                seconds.append(ask(url, tokens[n], questions[(n * per_asker + i) % len(questions)]))
            except Exception as exc:  # counted, not fatal: a refused or failed answer
                errors.append(repr(exc))

    started = time.perf_counter()
    threads = [threading.Thread(target=asker, args=(n,)) for n in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(seconds)
    return {
        "askers": len(tokens),
        "answers": len(seconds),
        "errors": len(errors),
        "answers_per_second": round(len(seconds) / wall, 3),
        "p50": round(statistics.median(ordered), 2) if ordered else None,
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2) if ordered else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--askers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--per-asker", type=int, default=6)
    parser.add_argument("--label", default="now")
    args = parser.parse_args()
    data = setup_django(str(Path(tempfile.gettempdir()) / "rag-answers-demo"))
    from django.contrib.auth.models import User
    from knox.models import AuthToken

    tokens = []
    for n in range(max(args.askers)):
        user, _ = User.objects.get_or_create(username=f"load-{n}")
        tokens.append(AuthToken.objects.create(user)[1])
    questions = []
    for name in ("demo.jsonl", "demo-parts.jsonl"):
        for line in (ROOT / "bench" / "qa" / name).read_text().splitlines():
            item = json.loads(line)
            if item.get("answerable", True):
                questions.append(item["question"])
    questions = questions[::3]  # single and composed questions interleaved
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ragsite.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "12",
            "--timeout",
            "300",
        ],
        cwd=ROOT,
        env={**__import__("os").environ, "RAG_DATA_DIR": str(data)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/ask"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ask(url, tokens[0], "What is this collection about?")  # warm: the models load
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        rows = [run(url, tokens[:n], questions, args.per_asker) for n in args.askers]
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = ROOT / "bench" / "results" / f"load-{args.label}.json"
    out.write_text(json.dumps({"label": args.label, "rows": rows}, indent=1) + "\n")
    print("| askers | answers/s | p50 (s) | p95 (s) | errors |\n| --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['askers']} | {row['answers_per_second']} | {row['p50']} | {row['p95']} | {row['errors']} |")


if __name__ == "__main__":
    main()
