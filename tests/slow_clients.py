"""Slow clients and the buffering proxy, for tests/adversarial/test_slow_clients.py
and bench/slow_clients.py.

A slow client opens a connection and sends its request a line at a time (or
its body a few bytes at a time), a pause between each, the way a slowloris
attack holds a server's threads; it records how long the server kept it.
`Proxy` runs nginx from docker/nginx.conf.template (ragsite/proxy.py) in a
folder of its own, in front of a server already listening."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ragsite import proxy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SlowClient:
    port: int
    gap: float  # seconds between two sends
    duration: float  # the client gives up after this long
    body: bool = False  # trickle a POST body instead of the headers
    held: float | None = None  # seconds until the server closed the connection (None: it never did)
    error: str = ""
    _thread: threading.Thread = field(default=None, repr=False)

    def start(self) -> SlowClient:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(self.duration + 10)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.duration + 5)
        except OSError as error:
            self.error = f"connect: {error}"
            return
        with sock:
            if self.body:
                # The token endpoint reads its body unsigned-in (raise its throttle to keep it reading).
                head = (
                    "POST /api/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n"
                )
                sock.sendall(head.encode() + b"username=")
                piece = b"a" * 10
            else:
                sock.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                piece = b"X-Slow: a\r\n"
            sock.settimeout(self.gap)
            while time.monotonic() - started < self.duration:
                try:
                    sock.recv(4096)  # the server answered (400, 408) or closed it: it let go
                    self.held = time.monotonic() - started
                    return
                except TimeoutError:
                    pass
                except OSError:
                    self.held = time.monotonic() - started
                    return
                try:
                    sock.sendall(piece)
                except OSError:
                    self.held = time.monotonic() - started
                    return


def slow_clients(port: int, count: int, gap: float, duration: float, body: bool = False) -> list[SlowClient]:
    return [SlowClient(port, gap, duration, body).start() for _ in range(count)]


class Proxy:
    """nginx on a free loopback port in front of 127.0.0.1:upstream_port."""

    def __init__(self, folder: Path, upstream_port: int, options: dict | None = None):
        self.folder = folder
        self.port = free_port()
        self.options = proxy.ProxyOptions(
            listen=f"127.0.0.1:{self.port}",
            upstream=f"127.0.0.1:{upstream_port}",
            **{"max_upload_mb": 50, "header_timeout": 10, "body_timeout": 30, **(options or {})},
        )
        self.process = None

    @staticmethod
    def available() -> bool:
        return shutil.which("nginx") is not None

    def __enter__(self) -> Proxy:
        conf = proxy.write(self.folder, self.options)
        self.log = open(self.folder / "nginx.log", "wb")
        self.process = subprocess.Popen(
            ["nginx", "-e", "stderr", "-p", str(self.folder), "-c", conf.name, "-g", "daemon off;"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start:\n" + (self.folder / "nginx.log").read_text()) from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
