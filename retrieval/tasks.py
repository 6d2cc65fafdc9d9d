"""Retrieval's Celery tasks. Index writes are routed to the index queue
(settings.CELERY_TASK_ROUTES), which one worker consumes with concurrency 1;
building a new index happens on the default queue, off the write path."""

import logging

from celery import shared_task
from django.conf import settings

from ingestion import services as ingestion
from retrieval import indexing, versions
from retrieval.finetune import pipeline

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def index_document(self, document_id: int) -> None:
    try:
        with ingestion.failures_recorded(document_id):
            indexing.index_document(document_id)
    except ingestion.TransientError as exc:
        if self.request.retries >= settings.RAG_TASK_MAX_RETRIES:
            log.warning("Document %s: giving up after %s retries: %r", document_id, self.request.retries, exc)
            ingestion.mark_failed(document_id, ingestion.RETRIES_EXHAUSTED.format(retries=self.request.retries))
            return
        # The claim was released (or is claimed back from exc.left_at): processed again from the start.
        ingestion.enqueue(document_id, left_at=exc.left_at)


@shared_task(acks_late=True, ignore_result=True)
def remove_vectors(chunk_ids: list[int]) -> None:
    indexing.remove_chunks(chunk_ids)


@shared_task(acks_late=True, ignore_result=True)
def rebuild_index() -> None:
    indexing.rebuild_index()


@shared_task(acks_late=True, ignore_result=True)
def maintain_index(folder: str | None = None, model: str | None = None, form: str | None = None) -> None:
    indexing.maintain_index(folder, model, form)


@shared_task(acks_late=True, ignore_result=True)
def finetune_retriever(version_id: int) -> None:
    """A fine-tuning run queued from the admin (issue #6); progress goes on the row."""
    if pipeline.claim(version_id):  # a redelivered task finds the run taken and does nothing
        pipeline.run(version_id, pipeline.Options.from_settings())


@shared_task(acks_late=True, ignore_result=True)
def switch_retriever(version_id: int) -> None:
    """Switch searches to a retriever version, or roll back to an earlier one."""
    versions.switch_to(version_id)
