"""A milvus-lite server on loopback for the tests (the index on Milvus,
issue #32): one per test session, each test in collections of its own prefix."""

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """(the server process, its URI), once it answers."""
    from pymilvus import MilvusClient

    port = port or free_port()
    binary = Path(sys.executable).parent / "milvus-lite"
    log = open(data_dir.parent / f"milvus-{port}.log", "w")
    process = subprocess.Popen(
        [str(binary), "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"milvus-lite server exited: {(data_dir.parent / f'milvus-{port}.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            MilvusClient(uri=uri, timeout=5).list_collections()
            return process, uri
        except Exception:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    """Terminate a server or worker the tests started, killing it if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def drop_prefix(uri: str, prefix: str) -> None:
    """Remove a test's aliases and collections."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    for name in client.list_collections():
        if name.startswith(prefix + "_"):
            for alias in client.list_aliases(name).get("aliases", []):
                client.drop_alias(alias)
            client.drop_collection(name)
