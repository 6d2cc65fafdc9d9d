"""A real Celery worker process on the configured broker (Redis in CI),
sharing this test run's database, index folder and upload folder."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(transactional_db, isolated_storage):
    """Start `celery worker` processes (solo pool, unless `pool` says otherwise:
    time limits need prefork) that share this test's database and folders,
    with Celery beat inside when `beat`; each waits until it answers; all
    stop after the test."""
    from ragsite.celery import app

    app.control.purge()  # messages left on the broker by earlier runs name other databases' rows
    processes = []

    def start(pool="solo", beat=False, **extra_env):
        log_path = isolated_storage / f"worker-{len(processes)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "RAG_DATA_DIR": str(settings.DATA_DIR),
            "RAG_INDEX_DIR": str(settings.RAG_INDEX_DIR),
            "RAG_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            **extra_env,
        }
        log = open(log_path, "wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "ragsite",
                "worker",
                f"--pool={pool}",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"e2e-{os.getpid()}-{len(processes)}@%h",
                *(["-B", "--schedule", str(isolated_storage / "celerybeat-schedule")] if beat else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log_path
        process.log_file = log
        processes.append(process)
        # "ready" in its log, not a ping: a solo-pool worker that starts on
        # recovered work at once cannot answer pings until that work is done.
        deadline = time.monotonic() + 90
        while " ready." not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("The Celery worker did not start:\n" + log_path.read_text(errors="replace")[-4000:])
            time.sleep(0.3)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.log_file.close()
    connection.close()  # so the test database can be flushed


@pytest.fixture
def worker(start_worker):
    return start_worker()


def wait_until(predicate, timeout: float, what: str, worker=None, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    log = worker.log_path.read_text(errors="replace")[-4000:] if worker is not None else ""
    pytest.fail(f"Timed out waiting for {what}.\n{log}")
