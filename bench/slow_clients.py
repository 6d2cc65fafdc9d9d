"""Slow clients against the server `make run` starts (gunicorn, 1 worker, 48
threads), reached directly and through the buffering proxy in front of it
(nginx, docker/nginx.conf.template), in the same run (issue #26, M1).

    .venv/bin/python bench/slow_clients.py [--clients 12 60 200] [--seconds 20] [--label NAME]

Per shape and per number of slow clients: the sign-in page loaded every 0.5 s
while the slow clients send a header line each 2 s (a slowloris attack) or a
POST body 10 bytes each 2 s (to the token endpoint, which reads its body
before anyone signs in; its throttle raised so that it keeps reading): its p50, p95 and worst time, pages that failed
(no answer within 5 s), and how long the server held a slow client before
letting it go. Writes bench/results/slow-clients-<label>.json.
"""

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import machine  # noqa: E402
from bench.common import ROOT, setup_django, start_server  # noqa: E402

PAGE_TIMEOUT = 5.0


def page(port: int) -> float | None:
    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PAGE_TIMEOUT)
        connection.request("GET", "/accounts/login/")
        response = connection.getresponse()
        response.read()
        connection.close()
        return time.monotonic() - started if response.status == 200 else None
    except OSError:
        return None


def measure(port: int, clients: int, body: bool, seconds: float) -> dict:
    from tests.slow_clients import slow_clients

    slow = slow_clients(port, clients, gap=2.0, duration=seconds, body=body)
    time.sleep(2.5)
    times, failed = [], 0
    deadline = time.monotonic() + seconds - 4
    while time.monotonic() < deadline:
        took = page(port)
        if took is None:
            failed += 1
        else:
            times.append(took)
        time.sleep(0.5)
    for client in slow:
        client.join()
    held = [c.held for c in slow if c.held is not None]
    ordered = sorted(times)
    return {
        "slow_clients": clients,
        "trickle": "body" if body else "headers",
        "pages": len(times) + failed,
        "pages_failed": failed,
        "page_p50_s": round(statistics.median(ordered), 4) if ordered else None,
        "page_p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 4) if ordered else None,
        "page_max_s": round(ordered[-1], 4) if ordered else None,
        "slow_clients_let_go": len(held),
        "slow_client_held_max_s": round(max(held), 1) if held else None,
        "connect_errors": sum(1 for c in slow if c.error),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[12, 60, 200])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--label", default="run")
    args = parser.parse_args()

    data = setup_django()
    from tests.slow_clients import Proxy, free_port

    port = free_port()
    server = start_server(
        port,
        f"slow-clients-{args.label}-gunicorn.log",
        {"RAG_DATA_DIR": str(data), "RAG_NUM_PROXIES": "0", "API_TOKEN_RATE_LIMIT": "100000/min"},
    )
    rows = []
    try:
        deadline = time.monotonic() + 60
        while page(port) is None:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.3)
        with Proxy(data / "proxy", port) as proxied:
            for shape, target in (("gunicorn alone", port), ("nginx in front", proxied.port)):
                for clients in args.clients:
                    for body in (False, True):
                        row = {"shape": shape, **measure(target, clients, body, args.seconds)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        time.sleep(2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    result = {"machine": machine(), "nginx": nginx, "threads": 48, "gap_s": 2.0, "seconds": args.seconds, "rows": rows}
    out = ROOT / "bench" / "results" / f"slow-clients-{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        "| shape | slow clients | trickling | pages failed | page p50 / p95 / worst, s | slow clients let go (longest held, s) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        times = " / ".join("-" if r[k] is None else f"{r[k]:.3f}" for k in ("page_p50_s", "page_p95_s", "page_max_s"))
        held = f"{r['slow_clients_let_go']} of {r['slow_clients']} ({r['slow_client_held_max_s'] or '-'})"
        print(
            f"| {r['shape']} | {r['slow_clients']} | {r['trickle']} | {r['pages_failed']} of {r['pages']} | {times} | {held} |"
        )


if __name__ == "__main__":
    main()
