"""The seam between ingestion's pure modules and the database."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ingestion import parsing
from ingestion.chunking import chunk_pages
from ingestion.models import Chunk, Collection, Document
from ingestion.signals import document_chunked
from ingestion.tokens import count_tokens

log = logging.getLogger(__name__)

Status = Document.Status
CLAIM_TIMEOUT = timedelta(minutes=15)


class UploadRejected(Exception):
    """An upload refused before it is stored (a 4xx for the caller)."""


def get_collection(name: str | None = None, *, create: bool = True) -> Collection:
    name = (name or settings.RAG_DEFAULT_COLLECTION).strip()
    if create:
        return Collection.objects.get_or_create(name=name)[0]
    try:
        return Collection.objects.get(name=name)
    except Collection.DoesNotExist:
        raise UploadRejected(f"Unknown collection {name!r}.") from None


def safe_filename(name: str) -> str:
    """The last path component of a user-supplied name (no `../`, no folders)."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name.strip().lstrip(".")
    base = "".join(ch for ch in base if ch.isprintable())[:200]
    return base or "upload"


def add_document(fileobj, filename: str, *, collection: Collection, owner=None, title: str = "") -> tuple[Document, bool]:
    """Store an uploaded file and queue it. Returns (document, created);
    the same bytes in the same collection are one document."""
    filename = safe_filename(filename)
    limit = settings.RAG_MAX_UPLOAD_MB * 1024 * 1024
    media = Path(settings.MEDIA_ROOT)
    (media / "tmp").mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=media / "tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for block in _blocks(fileobj):
                size += len(block)
                if size > limit:
                    raise UploadRejected(f"The file is larger than the {settings.RAG_MAX_UPLOAD_MB} MB limit.")
                digest.update(block)
                out.write(block)
        sha = digest.hexdigest()
        existing = Document.objects.filter(collection=collection, sha256=sha).first()
        if existing:
            if existing.status == Status.FAILED:  # uploading it again is a retry
                reindex(existing)
                existing.refresh_from_db()
            return existing, False
        relative = f"documents/{sha[:2]}/{sha}{Path(filename).suffix.lower()[:16]}"
        (media / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, media / relative)
        tmp = None
        try:
            with transaction.atomic():
                document = Document.objects.create(
                    collection=collection,
                    owner=owner if getattr(owner, "is_authenticated", False) else None,
                    title=(title or Path(filename).stem)[:300],
                    original_filename=filename,
                    file=relative,
                    sha256=sha,
                    size=size,
                )
        except IntegrityError:  # the same file raced in concurrently
            return Document.objects.get(collection=collection, sha256=sha), False
        transaction.on_commit(lambda: enqueue(document.pk))
        return document, True
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def _blocks(fileobj, size=1024 * 1024):
    if hasattr(fileobj, "chunks"):  # Django UploadedFile / File
        yield from fileobj.chunks(size)
        return
    while block := fileobj.read(size):
        yield block


def enqueue(document_id: int) -> None:
    """Hand the document to a worker. A broker outage leaves it pending, not lost."""
    from ingestion.tasks import process_document

    try:
        process_document.delay(document_id)
    except Exception:  # kombu raises transport-specific errors
        log.exception("Could not enqueue document %s; it stays pending", document_id)


def claim(document_id: int) -> bool:
    """Claim a pending document (or one whose worker died) for processing."""
    now = timezone.now()
    stale = now - CLAIM_TIMEOUT
    claimable = Q(status=Status.PENDING) | Q(status__in=[Status.PARSING, Status.EMBEDDING], claimed_at__lt=stale)
    return Document.objects.filter(claimable, pk=document_id).update(status=Status.PARSING, claimed_at=now, error="") == 1


def process_document(document_id: int) -> None:
    """Parse, chunk and store a document, then announce it for embedding."""
    if not claim(document_id):
        log.info("Document %s is not claimable (done, gone or taken)", document_id)
        return
    document = Document.objects.get(pk=document_id)
    try:
        parsed = parsing.parse_file(document.file.path, document.original_filename)
        specs = chunk_pages(parsed.pages, count_tokens, settings.RAG_CHUNK_TOKENS, settings.RAG_CHUNK_OVERLAP)
        if not specs:
            raise parsing.ParseError("The document contains no text to index.")
    except parsing.ParseError as exc:
        mark_failed(document_id, str(exc))
        return
    except FileNotFoundError:
        mark_failed(document_id, "The stored file is missing; upload the document again.")
        return
    try:
        replace_chunks(document, parsed, specs)
        document_chunked.send(sender=Document, document_id=document_id)
    except Exception as exc:
        log.exception("Processing document %s failed", document_id)
        mark_failed(document_id, f"Internal error while indexing: {exc.__class__.__name__}: {exc}")


def replace_chunks(document: Document, parsed: parsing.ParsedDocument, specs) -> None:
    old_ids = list(document.chunks.values_list("pk", flat=True))
    with transaction.atomic():
        document.chunks.all().delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=document,
                ordinal=i,
                text=spec.text,
                page=spec.page,
                heading=spec.heading[:500],
                char_start=spec.char_start,
                char_end=spec.char_end,
                token_count=spec.token_count,
                content_hash=hashlib.sha256(spec.text.encode()).hexdigest(),
            )
            for i, spec in enumerate(specs)
        )
        fields = {"status": Status.EMBEDDING, "chunks_total": len(specs), "chunks_embedded": 0, "claimed_at": timezone.now()}
        fields["pages"] = sum(1 for p in parsed.pages if p.number is not None) or 1
        if parsed.title and document.title == Path(document.original_filename).stem:
            fields["title"] = parsed.title[:300]
        Document.objects.filter(pk=document.pk).update(**fields)
    if old_ids:
        from ingestion.signals import chunks_deleted

        chunks_deleted.send(sender=Document, chunk_ids=old_ids)


def record_progress(document_id: int, embedded: int) -> None:
    Document.objects.filter(pk=document_id).update(chunks_embedded=embedded, claimed_at=timezone.now())


def mark_indexed(document_id: int) -> None:
    Document.objects.filter(pk=document_id).update(status=Status.INDEXED, error="", indexed_at=timezone.now(), claimed_at=None)


def mark_failed(document_id: int, reason: str) -> None:
    log.warning("Document %s failed: %s", document_id, reason)
    Document.objects.filter(pk=document_id).update(status=Status.FAILED, error=reason[:2000], claimed_at=None)


def reindex(document: Document) -> None:
    """Queue a document again (re-parse, re-chunk, re-embed)."""
    Document.objects.filter(pk=document.pk).update(status=Status.PENDING, error="", claimed_at=None)
    transaction.on_commit(lambda: enqueue(document.pk))


def wait_for(document_ids, *, timeout: float, poll: float = 0.5, on_progress=None) -> list[Document]:
    """Poll until every document is indexed or failed, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        documents = list(Document.objects.filter(pk__in=document_ids))
        if on_progress:
            on_progress(documents)
        if all(d.is_finished for d in documents) or time.monotonic() > deadline:
            return documents
        time.sleep(poll)
