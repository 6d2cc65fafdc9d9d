"""The seam between ingestion's pure modules and the database."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.transitions import stale_before, transition
from ingestion import isolation, parsing, storage, titles
from ingestion.chunking import chunk_pages
from ingestion.limits import Guard, LimitExceeded, Limits
from ingestion.models import Chunk, Collection, Document
from ingestion.ocr import OcrOptions
from ingestion.signals import chunks_deleted, document_chunked
from ingestion.tokens import count_tokens

log = logging.getLogger(__name__)

Status = Document.Status
ACTIVE = (Status.PARSING, Status.EMBEDDING)
# Errors worth a retry: the database or the disk hiccupped, not the document.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, TimeoutError, ConnectionError)
# While a document is parsed and chunked, its claim is stamped (and a cancel
# noticed) at most this often.
HEARTBEAT_SECONDS = 1.0


# What users read when processing failed for a reason that is not the document's.
INTERNAL_ERROR = "An internal error stopped the processing of this document; the details are in the server log."
STOPPED_REPEATEDLY = (
    "Processing stopped {attempts} times without finishing (its worker was stopped, or it passed the hard time "
    "limit RAG_TASK_HARD_TIME_LIMIT); re-index it to try again."
)
RETRIES_EXHAUSTED = "A temporary fault (database, disk or queue) recurred on every one of {retries} retries; upload the document again later."


class UploadRejected(Exception):
    """An upload refused before it is stored (a 4xx for the caller)."""


class ReplaceRefused(UploadRejected):
    """An upload that would make a new version of a document the uploader may not change."""


class TransientError(Exception):
    """Processing hit a passing fault. The document was released to be
    retried, or, with the database still away, left claimed: its retry claims
    it back with `left_at` (ISO time), when its claim had its last heartbeat."""

    def __init__(self, message: str, left_at: str | None = None):
        super().__init__(message)
        self.left_at = left_at


class Cancelled(Exception):
    """The document was cancelled (or deleted) while it was being processed."""


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


def refuse_unsupported(filename: str) -> None:
    """For the upload doors (admin, API): a file no parser reads is refused
    before it is stored, with the reason. The CLI does not call it: a folder's
    unreadable file becomes a failed document that says why, beside the rest."""
    filename = safe_filename(filename)  # the name it would be stored, and parsed, under
    if reason := parsing.unsupported_reason(filename, ocr_options()):
        raise UploadRejected(f"{filename}: {reason}")


def readable_types() -> tuple[set[str], str]:
    """The suffixes this site reads and their description (images where OCR is available)."""
    return parsing.readable_types(ocr_options())


def ocr_options() -> OcrOptions:
    """How this site reads scanned pages and images (the RAG_OCR_* settings)."""
    return OcrOptions(
        enabled=settings.RAG_OCR,
        languages=settings.RAG_OCR_LANGUAGES,
        command=settings.RAG_OCR_TESSERACT,
        dpi=settings.RAG_OCR_DPI,
        min_chars=settings.RAG_OCR_MIN_CHARS,
    )


def may_change_documents(user, collection: Collection) -> bool:
    """Whether `user` may change the documents of `collection` (replace one
    with a new version, retry a failed one): staff with Django's
    ingestion.change_document in a collection they may write to. None is a
    trusted caller (the CLI, a fixture): it may."""
    if user is None:
        return True
    if not getattr(user, "is_authenticated", False) or not user.has_perm("ingestion.change_document"):
        return False
    return Collection.objects.writable_by(user).filter(pk=collection.pk).exists()


def refuse_replacement(filename: str, collection: Collection, user) -> None:
    """The rule every upload door shares (add_document applies it once the
    file's bytes are known: the same bytes are a duplicate, not a new
    version): a changed file named like a document of the collection would
    replace it, which only a user who may change that collection's documents
    may do; anyone else is refused with the reason and the way out (a new
    name adds a new document)."""
    filename = safe_filename(filename)
    if may_change_documents(user, collection):
        return
    if Document.objects.filter(collection=collection, original_filename=filename).exists():
        raise ReplaceRefused(
            f"{filename}: a document of this name is already in {collection.name}, and uploading it again "
            "would replace it with a new version, which needs the permission to change documents there. "
            "Rename the file to add it as a new document."
        )


# add_document's `version_of` default: a file named like a document of the collection is a new version of it.
BY_NAME = object()


def add_document(
    fileobj,
    filename: str,
    *,
    collection: Collection,
    owner=None,
    title: str = "",
    version_of=BY_NAME,
    source=None,
) -> tuple[Document, bool]:
    """Store an uploaded file and queue it. Returns (document, created);
    the same bytes in the same collection are one document. `owner` is the
    uploader and their rights decide (None: a trusted caller): a file named
    like a document of the collection is a new version of it only for a user
    who may change that collection's documents (ReplaceRefused otherwise), and
    only they retry a failed one by uploading its bytes again. A caller that
    knows which document a file is a version of (a synced source) says so
    with `version_of` (a Document, or None for a new one), and a new document
    records it as its `source`."""
    filename = safe_filename(filename)
    limit = settings.RAG_MAX_UPLOAD_MB * 1024 * 1024
    media = Path(settings.MEDIA_ROOT)
    (media / "tmp").mkdir(parents=True, exist_ok=True)
    storage.sweep_temporary()
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
            retry = existing.status in (Status.FAILED, Status.CANCELLED)  # uploading it again is a retry
            if retry and may_change_documents(owner, collection):
                reindex(existing)
                existing.refresh_from_db()
            return existing, False
        relative = f"documents/{sha[:2]}/{sha}{Path(filename).suffix.lower()[:16]}"
        if version_of is BY_NAME:
            previous = Document.objects.filter(collection=collection, original_filename=filename).first()
        else:
            previous = version_of
        if previous:  # a changed file: a new version of the same document
            refuse_replacement(filename, collection, owner)
            with transaction.atomic():
                # Locked as a delete locks it: deleted meanwhile, this file is a new document.
                previous = Document.objects.select_for_update().filter(pk=previous.pk).first()
                if previous is not None and previous.sha256 == sha:  # these very bytes raced in
                    return previous, False
                if previous is not None:
                    storage.place(tmp, relative)
                    _replace_file(previous, relative, sha, size)
            if previous is not None:
                tmp = None
                return previous, True
        try:
            with transaction.atomic():
                storage.place(tmp, relative)
                document = Document.objects.create(
                    collection=collection,
                    owner=owner if getattr(owner, "is_authenticated", False) else None,
                    title=(title or titles.from_filename(filename))[:300],
                    original_filename=filename,
                    file=relative,
                    sha256=sha,
                    size=size,
                    source=source,
                )
        except IntegrityError:  # the same file raced in concurrently
            raced = Document.objects.filter(collection=collection, sha256=sha).first()
            if raced is None:  # and was deleted since: store this one after all
                with open(tmp, "rb") as again:
                    return add_document(
                        again,
                        filename,
                        collection=collection,
                        owner=owner,
                        title=title,
                        version_of=version_of,
                        source=source,
                    )
            return raced, False
        tmp = None
        transaction.on_commit(lambda: enqueue(document.pk))
        return document, True
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def _replace_file(document: Document, relative: str, sha: str, size: int) -> None:
    """Point the document at its new file and queue it. Its old chunks stay
    searchable until the new ones are indexed; unchanged chunks keep their
    vectors (chunks are upserted by content hash)."""
    old_name = document.file.name
    transition(
        Document.objects.filter(pk=document.pk),
        to=Status.PENDING,
        file=relative,
        sha256=sha,
        size=size,
        error="",
        claimed_at=None,
        heartbeat_at=None,
        attempts=0,
    )
    document.refresh_from_db()
    if old_name != relative:
        storage.release_on_commit(old_name)
    transaction.on_commit(lambda: enqueue(document.pk))


def _blocks(fileobj, size=1024 * 1024):
    if hasattr(fileobj, "chunks"):  # Django UploadedFile / File
        yield from fileobj.chunks(size)
        return
    while block := fileobj.read(size):
        yield block


def enqueue(document_id: int, left_at: str | None = None) -> None:
    """Hand the document to a worker. A broker outage leaves it pending, not
    lost. `left_at`: a retry's own claim to take back (see claim)."""
    from ingestion.tasks import process_document  # the tasks module imports this one

    try:
        process_document.delay(document_id, left_at) if left_at else process_document.delay(document_id)
    except Exception:  # kombu raises transport-specific errors
        log.exception("Could not enqueue document %s; it stays pending", document_id)


# Documents this process is working on: its own recovery sweep leaves them alone
# (a slow step must not make a live claim look like a dead worker's).
_working_on: set[int] = set()


def working_on() -> frozenset[int]:
    """The documents this process is processing now (a recovery sweep leaves them alone)."""
    return frozenset(_working_on)


def claim(document_id: int, left_at: str | None = None) -> bool:
    """Claim a pending document (or one whose worker died) for processing.
    `left_at`: a retry's own claim, left at that time when the database was
    away, is claimable again while no worker has touched it since (a live
    claimant's heartbeats are later)."""
    claimable = Q(status=Status.PENDING) | Q(status__in=ACTIVE, claimed_at__lt=stale_before())
    if left_at:
        claimable |= Q(status__in=ACTIVE, claimed_at__lte=datetime.fromisoformat(left_at))
    return (
        transition(
            Document.objects.filter(claimable, pk=document_id),
            to=Status.PARSING,
            claimed_at=timezone.now(),
            heartbeat_at=timezone.now(),
            error="",
            attempts=F("attempts") + 1,
        )
        == 1
    )


def release(document_id: int) -> None:
    """Give a claimed document back (to be retried)."""
    transition(
        Document.objects.filter(pk=document_id),
        from_states=ACTIVE,
        to=Status.PENDING,
        claimed_at=None,
        heartbeat_at=None,
    )


def process_document(document_id: int, left_at: str | None = None) -> None:
    """Parse, chunk and store a document, then announce it for embedding.
    Raises TransientError (after releasing the claim) when a retry may succeed;
    a retry passes the error's `left_at` (see claim)."""
    if not claim(document_id, left_at):
        log.info("Document %s is not claimable (done, gone, cancelled or taken)", document_id)
        return
    _process_claimed(document_id)


def _process_claimed(document_id: int) -> None:
    with failures_recorded(document_id), storage.temporary() as searchable:
        started = time.perf_counter()
        document = Document.objects.get(pk=document_id)
        guard = Guard(
            parse_limits(), functools.partial(record_parse_heartbeat, document_id), interval=HEARTBEAT_SECONDS
        )
        parsed = isolation.parse_isolated(
            storage.local_path(document),
            document.original_filename,
            guard,
            memory_mb=settings.RAG_PARSE_MEMORY_MB,
            options=ocr_options(),
            searchable=searchable,
        )
        parsed_at = time.perf_counter()
        specs = chunk_pages(
            parsed.pages,
            count_tokens,
            settings.RAG_CHUNK_TOKENS,
            settings.RAG_CHUNK_OVERLAP,
            max_chars=settings.RAG_CHUNK_MAX_CHARS,
            guard=guard,
        )
        if not specs:
            raise parsing.ParseError("The document contains no text to index.")
        chunked_at = time.perf_counter()
        replace_chunks(document, parsed, specs, searchable=searchable if parsed.ocr_pages else None)
        log.info(
            "Document %s: parsed %s pages (%s by OCR) in %.2f s, %s chunks in %.2f s, stored in %.2f s",
            document_id,
            len(parsed.pages),
            len(parsed.ocr_pages),
            parsed_at - started,
            len(specs),
            chunked_at - parsed_at,
            time.perf_counter() - chunked_at,
        )
        document_chunked.send(sender=Document, document_id=document_id)


def _release_for_retry(document_id: int) -> str | None:
    """Release the claim on a fresh connection (the fault may have been this
    one's: a dropped connection fails every later query on it). None when
    released; with the database still away, the time to claim it back from
    (TransientError.left_at), so that the retry does not wait for the sweep."""
    left_at = timezone.now().isoformat()
    if not connection.in_atomic_block:  # (a caller's transaction is left to its caller)
        close_old_connections()  # one the server dropped is closed: the next query opens another
    try:
        release(document_id)
        return None
    except TRANSIENT_ERRORS as exc:
        log.warning("Document %s: could not release it (%r); its retry claims it back", document_id, exc)
        return left_at


def parse_limits() -> Limits:
    return Limits(
        max_pages=settings.RAG_MAX_PAGES,
        max_text_chars=settings.RAG_MAX_TEXT_CHARS,
        max_chunks=settings.RAG_MAX_CHUNKS,
        timeout=settings.RAG_PARSE_TIMEOUT,
    )


def record_parse_heartbeat(document_id: int) -> None:
    """A heartbeat on the claim while the document is parsed and chunked (so
    no other worker takes it over); raises Cancelled when the document was
    cancelled or deleted meanwhile, so the parse stops."""
    now = timezone.now()
    if not transition(
        Document.objects.filter(pk=document_id), from_states=[Status.PARSING], claimed_at=now, heartbeat_at=now
    ):
        raise Cancelled(document_id)


@contextlib.contextmanager
def failures_recorded(document_id: int):
    """Around a step of a claimed document (parsing here, embedding in
    retrieval): a bad file fails the document alone with a readable reason, a
    cancel stops quietly, and a transient error releases the claim and raises
    TransientError for the task to retry. The document counts as worked on by
    this process meanwhile (its own recovery sweep leaves it alone)."""
    _working_on.add(document_id)
    try:
        yield
    except SoftTimeLimitExceeded:  # the task's soft time limit: fail it rather than leave it claimed
        mark_failed(
            document_id,
            f"Processing took longer than {settings.RAG_TASK_SOFT_TIME_LIMIT:,} s "
            "(RAG_TASK_SOFT_TIME_LIMIT); split it into smaller documents.",
        )
    except (parsing.ParseError, LimitExceeded) as exc:
        mark_failed(document_id, str(exc))
    except FileNotFoundError:
        mark_failed(document_id, "The stored file is missing; upload the document again.")
    except (Cancelled, Document.DoesNotExist):
        log.info("Document %s was cancelled or deleted while processing", document_id)
    except (*TRANSIENT_ERRORS, OSError) as exc:
        log.warning("Transient error on document %s: %r; releasing it for a retry", document_id, exc)
        raise TransientError(f"{exc.__class__.__name__}: {exc}", left_at=_release_for_retry(document_id)) from exc
    except Exception:
        log.exception("Processing document %s failed", document_id)
        mark_failed(document_id, INTERNAL_ERROR)  # the detail is in the log, not shown to users
    finally:
        _working_on.discard(document_id)


def replace_chunks(document: Document, parsed: parsing.ParsedDocument, specs, *, searchable=None) -> list[int]:
    """Upsert the document's chunks by position and content hash: an unchanged
    passage keeps its row (and so its vector); changed and surplus ones go.
    `searchable` is the PDF with the text layer OCR gave the document (stored
    for the viewer with what OCR said of its pages). Returns the ids of the
    chunks removed."""
    existing = {chunk.ordinal: chunk for chunk in document.chunks.all()}
    keep, create, removed = [], [], []
    for ordinal, spec in enumerate(specs):
        digest = hashlib.sha256(spec.text.encode()).hexdigest()
        fields = {
            "page": spec.page,
            "heading": spec.heading[:500],
            "char_start": spec.char_start,
            "char_end": spec.char_end,
            "token_count": spec.token_count,
        }
        old = existing.pop(ordinal, None)
        if old is not None and old.content_hash == digest:
            for name, value in fields.items():
                setattr(old, name, value)
            keep.append(old)
            continue
        if old is not None:
            removed.append(old.pk)
        create.append(Chunk(document=document, ordinal=ordinal, text=spec.text, content_hash=digest, **fields))
    removed += [chunk.pk for chunk in existing.values()]
    with transaction.atomic():
        # Only the claimant may write: a cancel or a newer claim wins.
        claimed = Document.objects.select_for_update().filter(pk=document.pk, status=Status.PARSING).first()
        if claimed is None:
            raise Cancelled(document.pk)
        Chunk.objects.filter(pk__in=removed).delete()
        if keep:
            Chunk.objects.bulk_update(keep, ["page", "heading", "char_start", "char_end", "token_count"])
        Chunk.objects.bulk_create(create)
        # Handed to the index queue: no worker on it until embedding starts (no heartbeat to miss).
        update = {"chunks_total": len(specs), "chunks_embedded": 0, "claimed_at": timezone.now(), "heartbeat_at": None}
        update["pages"] = sum(1 for p in parsed.pages if p.number is not None) or 1
        update["ocr_pages"] = [
            {"page": p.number, "confidence": p.confidence, "words": p.words} for p in parsed.ocr_pages
        ]
        update["ocr_lowest"] = min((p.confidence for p in parsed.ocr_pages), default=None)
        update["searchable_file"] = storage.place_derived(searchable) if searchable else ""
        if claimed.searchable_file.name and claimed.searchable_file.name != update["searchable_file"]:
            storage.release_on_commit(claimed.searchable_file.name)
        if titles.is_placeholder(document.title, document.original_filename):
            headings = [spec.heading.split(" › ")[0] for spec in specs if spec.heading]
            update["title"] = titles.best(parsed.title, headings, document.original_filename)
        transition(Document.objects.filter(pk=document.pk), to=Status.EMBEDDING, **update)
        if removed:
            transaction.on_commit(lambda: chunks_deleted.send(sender=Document, chunk_ids=removed))
    return removed


def record_progress(document_id: int, embedded: int) -> None:
    """Progress and a heartbeat on the claim; raises Cancelled when the document
    was cancelled or deleted meanwhile, so the worker stops."""
    if not transition(
        Document.objects.filter(pk=document_id),
        from_states=[Status.EMBEDDING],
        chunks_embedded=embedded,
        claimed_at=timezone.now(),
        heartbeat_at=timezone.now(),
    ):
        raise Cancelled(document_id)


def mark_indexed(document_id: int) -> None:
    transition(
        Document.objects.filter(pk=document_id),
        from_states=[Status.EMBEDDING],
        to=Status.INDEXED,
        error="",
        indexed_at=timezone.now(),
        claimed_at=None,
        heartbeat_at=None,
    )


def cancel(document: Document) -> bool:
    """Stop a queued or running document; its worker stops at its next
    heartbeat (parsing, about once a second) or batch (embedding)."""
    return (
        transition(
            Document.objects.filter(pk=document.pk),
            from_states=[Status.PENDING, *ACTIVE],
            to=Status.CANCELLED,
            error="Cancelled by a user.",
            claimed_at=None,
            heartbeat_at=None,
        )
        == 1
    )


def mark_failed(document_id: int, reason: str) -> None:
    log.warning("Document %s failed: %s", document_id, reason)
    transition(
        Document.objects.filter(pk=document_id),
        to=Status.FAILED,
        error=reason[:2000],
        claimed_at=None,
        heartbeat_at=None,
    )


def reindex(document: Document) -> None:
    """Queue a document again (re-parse, re-chunk, re-embed what changed)."""
    transition(
        Document.objects.filter(pk=document.pk),
        to=Status.PENDING,
        error="",
        claimed_at=None,
        heartbeat_at=None,
        attempts=0,
    )
    transaction.on_commit(lambda: enqueue(document.pk))
