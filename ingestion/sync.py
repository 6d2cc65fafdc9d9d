"""Keeping a collection equal to a source (a folder, ingestion/sources.py).

One sync lists the source and compares it with what the last one saw
(SourceFile rows): a new file is added as a document; a changed one (its
size or time changed and its bytes too) becomes a new version of its
document; a file moved or renamed (the same bytes at a new path, where a
path went) keeps its document under its new name; a removed one is
withdrawn: its document is deleted, and the answers that cited it keep
their text with the citations marked withdrawn, as for any delete
(generation/withdrawal.py). Unchanged files are not read again. A file that
cannot be taken fails alone with its reason; a source that cannot be
listed, or lists empty where it held files (an unmounted share), pauses
and withdraws nothing. The sync owns only the documents it made: uploads
to the same collection stay.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ingestion import parsing, services, titles
from ingestion.models import Document, Source, SourceFile
from ingestion.sources import Entry, SourceUnavailable, reader_for

log = logging.getLogger(__name__)

State = Source.State
# A sync claimed longer ago than this is taken to be a dead worker's.
STALE_SYNC = timedelta(hours=1)
COUNTS = ("added", "changed", "renamed", "withdrawn", "unchanged", "failed", "skipped")
# The most file errors one sync keeps for the admin (the count says how many there were).
MAX_ERRORS = 200


class SyncBusy(Exception):
    """Another sync of the source is running."""


def interval(source: Source) -> timedelta:
    return timedelta(minutes=source.interval_minutes or settings.RAG_SYNC_INTERVAL_MINUTES)


def due_sources(now=None) -> list[int]:
    """The enabled sources whose next scheduled sync has come (paused ones too: they resume when they can)."""
    now = now or timezone.now()
    due = []
    idle = Q(syncing_since__isnull=True) | Q(syncing_since__lt=now - STALE_SYNC)
    for source in Source.objects.filter(idle, enabled=True).only("pk", "interval_minutes", "last_sync_at"):
        if source.last_sync_at is None or source.last_sync_at + interval(source) <= now:
            due.append(source.pk)
    return due


def _claim(source_id: int) -> bool:
    now = timezone.now()
    idle = Q(syncing_since__isnull=True) | Q(syncing_since__lt=now - STALE_SYNC)
    return Source.objects.filter(idle, pk=source_id).update(syncing_since=now) == 1


def sync(source_id: int, *, allow_empty: bool = False) -> dict:
    """Sync one source now; returns what it did (the counts, or the reason it paused).
    `allow_empty`: a source that lists no files withdraws everything it held
    (otherwise it pauses, taken for an unmounted share). SyncBusy when another
    sync of it runs."""
    if not _claim(source_id):
        raise SyncBusy(f"Source {source_id} is being synced already.")
    started = time.perf_counter()
    source = Source.objects.get(pk=source_id)
    Source.objects.filter(pk=source_id).update(state=State.SYNCING)
    try:
        result = _sync(source, allow_empty=allow_empty)
    except Exception as exc:
        log.exception("Sync of source %s failed", source_id)
        _finish(
            source_id, started, state=State.ERROR, reason=f"The sync stopped: {exc.__class__.__name__}: {exc}"[:2000]
        )
        raise
    _finish(source_id, started, **result)
    return result


def _finish(source_id: int, started: float, *, state, reason="", counts=None, errors=None) -> None:
    update = {"state": state, "reason": reason, "syncing_since": None, "last_sync_at": timezone.now()}
    update["last_duration"] = round(time.perf_counter() - started, 3)
    if counts is not None:
        update["last_counts"] = counts
        update["last_errors"] = (errors or [])[:MAX_ERRORS]
    Source.objects.filter(pk=source_id).update(**update)


def _sync(source: Source, *, allow_empty: bool) -> dict:
    reader = reader_for(source.kind, source.location, settings.RAG_SYNC_ROOTS)
    known = {row.path: row for row in source.files.select_related("document")}
    try:
        reader.check()
        listing = list(reader.entries())
    except SourceUnavailable as exc:
        return {"state": State.PAUSED, "reason": f"{exc} Sync paused: nothing was withdrawn."}
    counts, errors = Counter(dict.fromkeys(COUNTS, 0)), []

    def failed(path: str, reason: str, row: SourceFile | None = None) -> None:
        counts["failed"] += 1
        errors.append({"path": path, "error": reason})
        if row is not None and row.error != reason:
            SourceFile.objects.filter(pk=row.pk).update(error=reason[:2000])

    entries = []
    for entry in listing:
        name = PurePosixPath(entry.path).name
        if reason := parsing.unsupported_reason(name, services.ocr_options()):
            counts["skipped"] += 1
            errors.append({"path": entry.path, "error": reason})
            continue
        entries.append(entry)
    if not entries and any(row.document_id for row in known.values()) and not allow_empty:
        return {
            "state": State.PAUSED,
            "reason": f"The folder lists no files although {len(known)} were there at the last sync: it may be "
            "unmounted. Sync paused: nothing was withdrawn. If the files were removed on purpose, "
            "use “Sync now, withdrawing what is gone” on the source.",
        }

    # What changed: the size or time first, then the bytes of those alone.
    changed: list[tuple[Entry, str, SourceFile | None]] = []
    listed = set()
    for entry in entries:
        listed.add(entry.path)
        row = known.get(entry.path)
        if row and row.document_id and not row.error and (row.size, row.mtime_ns) == (entry.size, entry.mtime_ns):
            counts["unchanged"] += 1
            continue
        try:
            digest = reader.digest(entry.path)
        except OSError as exc:
            failed(entry.path, f"The file could not be read ({exc.strerror or exc}).", row)
            continue
        if row and row.document_id and row.sha256 == digest:
            SourceFile.objects.filter(pk=row.pk).update(size=entry.size, mtime_ns=entry.mtime_ns, error="")
            counts["unchanged"] += 1
            continue
        changed.append((entry, digest, row))

    gone = {path: row for path, row in known.items() if path not in listed}
    moved_from = {row.sha256: row for row in gone.values() if row.document_id and row.sha256}
    for entry, digest, row in changed:
        if row is None and digest in moved_from:  # the same bytes where a path went: a move or a rename
            old = moved_from.pop(digest)
            del gone[old.path]
            _move(old, entry)
            counts["renamed"] += 1
            continue
        try:
            _take(source, reader, entry, digest, row, counts)
        except (services.UploadRejected, OSError) as exc:
            reason = str(exc) if isinstance(exc, services.UploadRejected) else f"The file could not be read ({exc})."
            failed(entry.path, reason, row or _record(source, entry, digest, None, reason))

    for row in gone.values():
        document_id = row.document_id
        row.delete()
        if document_id and _withdraw_if_unused(document_id, source):
            counts["withdrawn"] += 1
    return {"state": State.OK, "counts": dict(counts), "errors": errors}


def _record(source: Source, entry: Entry, digest: str, document: Document | None, error: str = "") -> SourceFile:
    row, _ = SourceFile.objects.update_or_create(
        source=source,
        path=entry.path,
        defaults={
            "size": entry.size,
            "mtime_ns": entry.mtime_ns,
            "sha256": digest,
            "document": document,
            "error": error[:2000],
        },
    )
    return row


def _take(source, reader, entry: Entry, digest: str, row: SourceFile | None, counts: Counter) -> None:
    """Add a new file, or make a changed one a new version of its document."""
    name = PurePosixPath(entry.path).name
    previous = row.document if row and row.document_id else None
    with reader.open(entry.path) as handle:
        document, _ = services.add_document(
            handle, name, collection=source.collection, owner=None, version_of=previous, source=source
        )
    with transaction.atomic():
        _record(source, entry, digest, document)
    if previous is not None and previous.pk != document.pk:
        # The file now holds the bytes of another document: it is that one, and its old one may go.
        counts["changed"] += 1
        if _withdraw_if_unused(previous.pk, source):
            counts["withdrawn"] += 1
    elif previous is not None:
        counts["changed"] += 1
    else:
        counts["added"] += 1


def _move(row: SourceFile, entry: Entry) -> None:
    """A file moved or renamed: its row and document follow it (a name that
    was only a placeholder title follows the new name too)."""
    name = PurePosixPath(entry.path).name
    with transaction.atomic():
        SourceFile.objects.filter(pk=row.pk).update(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns, error="")
        document = row.document
        if document is not None and document.original_filename != services.safe_filename(name):
            update = {"original_filename": services.safe_filename(name)}
            if titles.is_placeholder(document.title, document.original_filename):
                update["title"] = titles.from_filename(name)[:300]
            Document.objects.filter(pk=document.pk).update(**update)


def _withdraw_if_unused(document_id: int, source: Source) -> bool:
    """Delete a document this source made once no file of any source is it
    any longer (its citations are withdrawn by the delete); True when it
    went. A document uploaded by hand with the same bytes stays."""
    with transaction.atomic():
        if SourceFile.objects.filter(document_id=document_id).exists():
            return False
        return Document.objects.filter(pk=document_id, source=source).delete()[0] > 0
