"""Retrieval's answers to what ingestion announces."""

from retrieval import services


def embed_chunked_document(sender, document_id, **kwargs):
    # Runs in the process that chunked the document (a worker, or the CLI
    # when no worker runs): the model is already warm there.
    services.index_document(document_id)


def remove_deleted_chunks(sender, chunk_ids, **kwargs):
    from retrieval.tasks import remove_vectors

    services.enqueue_safely(remove_vectors, list(chunk_ids))
