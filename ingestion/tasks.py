import logging
import threading
import time

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections

from ingestion import services, sweeps

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def process_document(self, document_id: int, left_at: str | None = None) -> None:
    try:
        services.process_document(document_id, left_at)
    except services.TransientError as exc:
        if self.request.retries >= settings.RAG_TASK_MAX_RETRIES:
            log.warning("Document %s: giving up after %s retries: %r", document_id, self.request.retries, exc)
            services.mark_failed(document_id, services.RETRIES_EXHAUSTED.format(retries=self.request.retries))
            return
        retry = {"document_id": document_id, "left_at": exc.left_at}
        raise self.retry(exc=exc, kwargs=retry, countdown=min(300, 2 ** (self.request.retries + 1))) from exc


@worker_ready.connect
def start_recovery(**kwargs):
    """Every worker sweeps for what a dead worker left behind: at start, then
    every half heartbeat or claim timeout, whichever is shorter, at most every
    minute (a daemon thread beside the consumer)."""
    interval = min(60.0, max(1.0, min(settings.RAG_CLAIM_TIMEOUT, settings.RAG_HEARTBEAT_TIMEOUT) / 2))
    threading.Thread(target=_recovery_loop, args=(interval,), name="ingestion-recovery", daemon=True).start()


def _recovery_loop(interval: float) -> None:
    while True:
        try:
            count = sweeps.requeue_unfinished()
            if count:
                log.info("Queued %s unfinished document(s) again", count)
        except Exception:  # keep sweeping through a database outage
            log.exception("Recovery sweep failed")
        finally:
            close_old_connections()
        time.sleep(interval)


@shared_task(ignore_result=True)
def sync_source(source_id: int, allow_empty: bool = False) -> None:
    """Sync one source (ingestion/sync.py); a sync already running takes this one's place."""
    from ingestion import sync

    try:
        sync.sync(source_id, allow_empty=allow_empty)
    except sync.SyncBusy:
        log.info("Source %s is being synced already", source_id)


@shared_task(ignore_result=True)
def sync_due_sources() -> None:
    """Celery beat's tick (CELERY_BEAT_SCHEDULE): queue the sources whose sync is due."""
    from ingestion import sync

    for source_id in sync.due_sources():
        sync_source.delay(source_id)
