"""An S3 server on loopback for the tests (moto's server: the S3 API over
HTTP, as boto3 and django-storages speak it to AWS or MinIO)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.milvus import free_port, stop  # noqa: F401  (stop: the tests' one way to end a server)

KEY, SECRET, REGION = "test-key", "test-secret", "us-east-1"


def start_server(log_path: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """(the server process, its endpoint URL), once it answers."""
    port = port or free_port()
    binary = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=open(log_path, "w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto server did not start: {log_path.read_text()}") from None
            time.sleep(0.1)


def client(endpoint: str):
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION
    )


def environment(endpoint: str, bucket: str) -> dict:
    """The settings' environment variables of a host using this bucket."""
    return {
        "RAG_S3_BUCKET": bucket,
        "RAG_S3_ENDPOINT_URL": endpoint,
        "RAG_S3_ACCESS_KEY": KEY,
        "RAG_S3_SECRET_KEY": SECRET,
        "RAG_S3_REGION": REGION,
    }
