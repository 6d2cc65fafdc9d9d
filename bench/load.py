"""Answers per second as concurrent askers grow, against a warm server started
as `make run` starts it (gunicorn, 1 worker, 48 threads) on the demo corpus;
one user per asker (the per-user answer slots do not refuse).

    .venv/bin/python bench/load.py [--askers 1 2 4 8 16 32] [--answers 12] [--label NAME] [--env K=V ...] [--proxy]

Each asker asks streamed questions (POST /api/ask, stream: true) one after
another; a level asks max(--answers, 2 x askers) in all (--answers: 24). Per level: answers
per second, p50/p95/p99 of the whole answer, time to the first event of the
answer itself (`start`: retrieval done; queued answers wait before it) and
to the first token or the stored answer, the answers that waited in the
queue, errors (refusals, broken streams), and the p95 of a login page
loaded every 0.25 s meanwhile. `--env` sets the server's environment
(RAG_GENERATOR_SLOTS=1 RAG_ANSWER_CONCURRENCY=40: the engine and queue before
issue #27). `--proxy` asks through nginx in front of gunicorn, as `make run`
serves (docker/serve.sh). Uses the data folder bench/answers.py leaves
($TMPDIR/rag-answers-demo; run that first). Questions: the answerable ones
of bench/qa/demo.jsonl and bench/qa/demo-parts.jsonl, in turn. Writes
bench/results/load-<label>.json and prints the table.
"""

import argparse
import contextlib
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import machine  # noqa: E402
from bench.common import ROOT, setup_django, start_server  # noqa: E402
from tests.slow_clients import Proxy, free_port  # noqa: E402


def ask(port: int, token: str, question: str) -> dict:
    """One streamed answer: seconds to `start`, to the first token or `done`, to the end; its events."""
    body = json.dumps({"question": question, "stream": True})
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}", "Accept": "text/event-stream"}
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        connection.request("POST", "/api/ask", body, headers)
        response = connection.getresponse()
        if response.status != 200:
            response.read()
            return {"error": f"HTTP {response.status}"}
        found = {"queued": False}
        buffer = b""
        while True:
            chunk = response.read1(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                name = block.split(b"\n", 1)[0].removeprefix(b"event: ").decode()
                now = time.perf_counter() - started
                if name == "queued":
                    found["queued"] = True
                elif name == "start":
                    found.setdefault("start", now)
                elif name in ("token", "replace", "done"):
                    found.setdefault("first", now)
                if name == "error":
                    found["error"] = block.decode()[-200:]
                if name == "done":
                    found["done"] = now
        if "done" not in found and "error" not in found:
            found["error"] = "the stream ended without its answer"
        return found
    finally:
        connection.close()


def page_loads(port: int, stop: threading.Event, seconds: list) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", "/accounts/login/")
            connection.getresponse().read()
            seconds.append(time.perf_counter() - started)
        except OSError:
            seconds.append(60.0)
        finally:
            connection.close()
        stop.wait(0.25)


def quantile(values, q):
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None


def run(port: int, tokens: list[str], questions: list[str], total: int) -> dict:
    results, lock = [], threading.Lock()
    per_asker = max(1, -(-total // len(tokens)))

    def asker(n: int):
        for i in range(per_asker):
            try:
                found = ask(port, tokens[n], questions[(n * per_asker + i) % len(questions)])
            except Exception as exc:  # counted, not fatal
                found = {"error": repr(exc)}
            with lock:
                results.append(found)

    stop, pages = threading.Event(), []
    pager = threading.Thread(target=page_loads, args=(port, stop, pages))
    pager.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=asker, args=(n,)) for n in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    stop.set()
    pager.join()
    done = [r for r in results if "done" in r]
    return {
        "askers": len(tokens),
        "answers": len(done),
        "errors": len(results) - len(done),
        "error_examples": sorted({r["error"] for r in results if "error" in r})[:3],
        "answers_per_second": round(len(done) / wall, 3),
        "p50": quantile([r["done"] for r in done], 0.5),
        "p95": quantile([r["done"] for r in done], 0.95),
        "p99": quantile([r["done"] for r in done], 0.99),
        "start_p50": quantile([r["start"] for r in done if "start" in r], 0.5),
        "first_p50": quantile([r["first"] for r in done if "first" in r], 0.5),
        "first_p95": quantile([r["first"] for r in done if "first" in r], 0.95),
        "queued": sum(r.get("queued", False) for r in results),
        "page_p95": quantile(pages, 0.95),
        "pages": len(pages),
    }


def questions_of() -> list[str]:
    found = []
    for name in ("demo.jsonl", "demo-parts.jsonl"):
        for line in (ROOT / "bench" / "qa" / name).read_text().splitlines():
            item = json.loads(line)
            if item.get("answerable", True):
                found.append(item["question"])
    return found[::3]  # single and composed questions interleaved


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--askers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--answers", type=int, default=24, help="Answers per level at least (2 per asker at least).")
    parser.add_argument("--label", default="now")
    parser.add_argument("--env", nargs="*", default=[], help="K=V for the server's environment.")
    parser.add_argument("--proxy", action="store_true", help="Ask through nginx in front, as make run serves.")
    args = parser.parse_args()
    data = setup_django(str(Path(tempfile.gettempdir()) / "rag-answers-demo"))
    from django.contrib.auth.models import User
    from knox.models import AuthToken

    tokens = []
    for n in range(max(args.askers)):
        user, _ = User.objects.get_or_create(username=f"load-{n}")
        tokens.append(AuthToken.objects.create(user)[1])
    questions = questions_of()
    extra = dict(item.split("=", 1) for item in args.env)
    if args.proxy:
        extra.setdefault("RAG_NUM_PROXIES", "1")
    port = free_port()
    server = start_server(
        port,
        f"load-{args.label}-gunicorn.log",
        {"RAG_DATA_DIR": str(data), "RAG_ANSWERABILITY_AUTOFIT": "false", **extra},
    )
    stack = contextlib.ExitStack()
    try:
        if args.proxy:
            port = stack.enter_context(Proxy(data / "proxy", port)).port
        deadline = time.monotonic() + 180
        while True:
            try:
                if "done" in ask(port, tokens[0], "What is this collection about?"):  # warm: the models load
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not answer; see its log")
            time.sleep(1)
        rows = []
        for n in args.askers:
            rows.append(run(port, tokens[:n], questions, max(args.answers, 2 * n)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        stack.close()
        server.terminate()
        server.wait(timeout=30)
    out = ROOT / "bench" / "results" / f"load-{args.label}.json"
    out.write_text(
        json.dumps(
            {"label": args.label, "proxy": args.proxy, "env": extra, "machine": machine(), "rows": rows}, indent=1
        )
        + "\n"
    )
    print(
        "| askers | answers/s | x one asker | p50 (s) | p95 (s) | p99 (s) | start p50 (s) | first token p50 (s) "
        "| queued | errors | page p95 (s) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    one = rows[0]["answers_per_second"] or 1
    for row in rows:
        print(
            f"| {row['askers']} | {row['answers_per_second']} | {row['answers_per_second'] / one:.2f} | {row['p50']} "
            f"| {row['p95']} | {row['p99']} | {row['start_p50']} | {row['first_p50']} | {row['queued']} "
            f"| {row['errors']} | {row['page_p95']} |"
        )


if __name__ == "__main__":
    main()
