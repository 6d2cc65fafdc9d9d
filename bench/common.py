"""Shared set-up for the benchmarks: a throwaway data folder, Django, a worker."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(data_dir: str | None = None) -> Path:
    """Point the settings at a fresh data folder (unless one is given), migrate."""
    data = Path(data_dir or tempfile.mkdtemp(prefix="rag-bench-"))
    os.environ["RAG_DATA_DIR"] = str(data)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return data


def start_worker(log_path: Path, name: str = "") -> subprocess.Popen:
    """A real Celery worker (solo pool) on the same settings; returns once it is ready."""
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ragsite",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"bench-{os.getpid()}{name}@%h",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while " ready." not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("worker did not start:\n" + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.2)
    return process


def start_server(port: int, log_name: str, env: dict) -> subprocess.Popen:
    """gunicorn as `make run` starts it (1 worker, 48 threads) on 127.0.0.1:`port`,
    `env` over this process's environment, its output in $TMPDIR/`log_name`;
    returns at once (the caller waits until it answers)."""
    log = open(Path(tempfile.gettempdir()) / log_name, "wb")  # noqa: SIM115 (the server's, for its life)
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "ragsite.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "1", "--threads", "48", "--timeout", "300"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
