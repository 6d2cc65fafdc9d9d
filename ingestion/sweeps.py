"""Watching documents from outside a worker: the recovery sweep that queues
again what no worker is on, and waiting for documents to finish (the CLI)."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.transitions import stale_before, transition
from ingestion import services
from ingestion.models import Document

Status = Document.Status


def requeue_unfinished() -> int:
    """Queue again what no worker is on: documents whose worker stopped saying
    it is alive (RAG_HEARTBEAT_TIMEOUT: a dead worker), claims older than the
    claim timeout (one waiting for the index queue too long), and documents
    pending for longer than it (a lost message). Each is reset to pending and
    stamped, so a document is re-queued at most once per timeout."""
    stale = stale_before()
    silent = timezone.now() - timedelta(seconds=settings.RAG_HEARTBEAT_TIMEOUT)
    dead = Q(status__in=services.ACTIVE) & (Q(claimed_at__lt=stale) | Q(heartbeat_at__lt=silent))
    lost = Q(status=Status.PENDING, updated__lt=stale) | dead
    # A document whose workers keep stopping on it (killed at the hard time
    # limit, or a crash it causes) fails instead of being queued for ever.
    spent = dead & Q(attempts__gt=settings.RAG_TASK_MAX_RETRIES)
    busy = list(services.working_on())
    for pk, attempts in Document.objects.filter(spent).exclude(pk__in=busy).values_list("pk", "attempts"):
        services.mark_failed(pk, services.STOPPED_REPEATEDLY.format(attempts=attempts))
    ids = list(Document.objects.filter(lost).exclude(pk__in=busy).values_list("pk", flat=True))
    if ids:
        transition(Document.objects.filter(lost, pk__in=ids), to=Status.PENDING, claimed_at=None, heartbeat_at=None)
    for pk in ids:
        services.enqueue(pk)
    return len(ids)


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
