"""The SQLite database holds every user's questions and answers: it is
created readable by its owner alone (issue #26, L10; it was 0644)."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from core.env import private_file

ROOT = Path(__file__).resolve().parent.parent


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_is_made_owner_only_and_an_open_one_is_tightened(tmp_path):
    fresh = private_file(tmp_path / "new" / "db.sqlite3")
    assert fresh.exists() and fresh.stat().st_size == 0 and mode(fresh) == 0o600 and mode(fresh.parent) == 0o700
    open_one = tmp_path / "old.sqlite3"
    open_one.write_bytes(b"data")
    open_one.chmod(0o644)
    assert private_file(open_one).read_bytes() == b"data" and mode(open_one) == 0o600


def test_the_default_sqlite_database_is_created_0600(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"RAG_DATA_DIR": str(tmp_path)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    database = tmp_path / "db.sqlite3"
    assert database.stat().st_size > 0 and mode(database) == 0o600
