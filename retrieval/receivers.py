"""Retrieval's answers to what ingestion announces."""

from ragsite.celery import enqueue_safely
from retrieval import indexing


def embed_chunked_document(sender, document_id, **kwargs):
    """Inside a worker, the embedding goes to the index queue (one writer);
    elsewhere (the CLI's inline mode, eager tasks in tests) it runs here."""
    from celery import current_task

    if current_task and current_task.request.id and not current_task.request.is_eager:
        from retrieval.tasks import index_document

        enqueue_safely(index_document, document_id)
    else:
        indexing.index_document(document_id)


def remove_deleted_chunks(sender, chunk_ids, **kwargs):
    from retrieval.tasks import remove_vectors

    enqueue_safely(remove_vectors, list(chunk_ids))
