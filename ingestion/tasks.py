import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from ingestion import services

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def process_document(self, document_id: int) -> None:
    try:
        services.process_document(document_id)
    except services.TransientError as exc:
        if self.request.retries >= settings.RAG_TASK_MAX_RETRIES:
            services.mark_failed(document_id, f"Gave up after {self.request.retries} retries: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1)))


@worker_ready.connect
def recover_unfinished(**kwargs):
    """A worker that starts picks up what a dead one left (claims past RAG_CLAIM_TIMEOUT)."""
    count = services.requeue_unfinished()
    if count:
        log.info("Queued %s unfinished document(s) again", count)
