"""Retrieval's answers to what ingestion announces."""

from celery import current_task

from core.broker import enqueue_safely
from retrieval import indexing, tasks


def embed_chunked_document(sender, document_id, **kwargs):
    """Inside a worker, the embedding goes to the index queue (one writer);
    elsewhere (the CLI's inline mode, eager tasks in tests) it runs here."""
    if current_task and current_task.request.id and not current_task.request.is_eager:
        enqueue_safely(tasks.index_document, document_id)
    else:
        indexing.index_document(document_id)


def remove_deleted_chunks(sender, chunk_ids, **kwargs):
    enqueue_safely(tasks.remove_vectors, list(chunk_ids))
