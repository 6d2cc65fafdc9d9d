"""Stored files, shared by content: the same bytes uploaded to two
collections are two documents and one file (documents/<sha[:2]>/<sha>.<ext>
in the file store: MEDIA_ROOT, or an S3 bucket every host reaches,
core/filestore.py). A file is removed only when, after the deleting
transaction committed, no row uses it; an upload puts its file back once its
own row is committed if such a delete removed it meanwhile. Both steps hold
the file's lock (filestore.locked: across hosts on PostgreSQL), so a delete
racing an upload of the same bytes never leaves the upload without its file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from core import filestore
from ingestion.models import Document

log = logging.getLogger(__name__)


def place(tmp: str, name: str) -> None:
    """Store the uploaded temporary file `tmp` as `name`: in place now (the
    caller's transaction may read it before it commits), and once the
    transaction commits, put back if a delete of another document that
    shared it removed it meanwhile. `tmp` belongs to this call from here on
    (removed after the commit; a rollback leaves it to sweep_temporary)."""
    if filestore.shared():
        with filestore.locked(name):
            filestore.put(name, tmp)

        def settle_shared():
            with filestore.locked(name):
                filestore.put(name, tmp)  # nothing, unless a delete took it meanwhile
            Path(tmp).unlink(missing_ok=True)

        transaction.on_commit(settle_shared)
        return
    target = Path(settings.MEDIA_ROOT) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with filestore.locked(name):
        if not target.exists():
            os.link(tmp, target)

    def settle():
        with filestore.locked(name):
            if target.exists():
                Path(tmp).unlink(missing_ok=True)
            else:
                os.replace(tmp, target)

    transaction.on_commit(settle)


@contextlib.contextmanager
def temporary() -> Iterator[Path]:
    """A fresh path under MEDIA_ROOT/tmp for a file made while processing (not
    created); removed after, unless place_derived took it."""
    folder = Path(settings.MEDIA_ROOT) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, suffix=".pdf")
    os.close(fd)
    os.unlink(name)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def place_derived(path: Path) -> str:
    """Store a PDF made from a document (its searchable copy), named by its own
    content like the originals; returns the name. Call inside the transaction
    that points a row at it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    sha = digest.hexdigest()
    name = f"documents/{sha[:2]}/{sha}.pdf"
    fd, tmp = tempfile.mkstemp(dir=Path(settings.MEDIA_ROOT) / "tmp")
    os.close(fd)
    os.replace(path, tmp)  # place() owns `tmp` from here on
    place(tmp, name)
    return name


def shown_path(document: Document) -> Path:
    """The file the source viewer shows: the searchable PDF of an OCR'd document, else the original."""
    if document.searchable_file:
        return filestore.local_path(document.searchable_file.name)
    return local_path(document)


def local_path(document: Document) -> Path:
    """A file on this host with the document's original (cached from the
    shared store when there is one); FileNotFoundError when it is gone."""
    return filestore.local_path(document.file.name, document.sha256)


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
        with filestore.locked(name):
            if not Document.objects.filter(Q(file=name) | Q(searchable_file=name)).exists():
                if filestore.shared():
                    filestore.delete(name)
                else:
                    (Path(settings.MEDIA_ROOT) / name).unlink(missing_ok=True)

    if name:
        transaction.on_commit(release)
