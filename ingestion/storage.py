"""Stored files, shared by content: the same bytes uploaded to two
collections are two documents and one file (documents/<sha[:2]>/<sha>.<ext>
under MEDIA_ROOT). A file is removed only when, after the deleting
transaction committed, no row uses it; an upload puts its file back once its
own row is committed if such a delete removed it meanwhile. Both steps hold
the file's lock, so a delete racing an upload of the same bytes never leaves
the upload without its file. (The lock is an flock:
processes on one host, or a shared filesystem whose flock works across hosts.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from ingestion.models import Document

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _locked(name: str):
    folder = Path(settings.MEDIA_ROOT) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / (Path(name).name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def place(tmp: str, name: str) -> None:
    """Store the uploaded temporary file `tmp` as `name` (relative to
    MEDIA_ROOT): linked in place now (the caller's transaction may read it
    before it commits), and once the transaction commits, put back if a
    delete of another document that shared it removed it meanwhile. `tmp`
    belongs to this call from here on (removed after the commit; a rollback
    leaves it to sweep_temporary)."""
    target = Path(settings.MEDIA_ROOT) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(name):
        if not target.exists():
            os.link(tmp, target)

    def settle():
        with _locked(name):
            if target.exists():
                Path(tmp).unlink(missing_ok=True)
            else:
                os.replace(tmp, target)

    transaction.on_commit(settle)


def sweep_temporary(max_age: float = 86_400) -> None:
    """Remove temporary uploads older than `max_age` seconds (left by
    rolled-back uploads)."""
    folder = Path(settings.MEDIA_ROOT) / "tmp"
    cutoff = time.time() - max_age
    for path in folder.glob("tmp*"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def release_on_commit(name: str) -> None:
    """Remove the stored file `name` after the current transaction commits,
    unless a document still uses it then."""

    def release():
        with _locked(name):
            if not Document.objects.filter(file=name).exists():
                (Path(settings.MEDIA_ROOT) / name).unlink(missing_ok=True)

    if name:
        transaction.on_commit(release)
