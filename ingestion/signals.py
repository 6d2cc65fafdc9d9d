"""What ingestion announces; retrieval listens (ingestion never imports it)."""

import logging

from django.db import transaction
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import Signal, receiver

from ingestion import storage
from ingestion.models import Document

log = logging.getLogger(__name__)

# Sent when a document's chunks are stored and need vectors. kwargs: document_id.
document_chunked = Signal()
# Sent after commit when chunks are gone from the database. kwargs: chunk_ids.
chunks_deleted = Signal()


@receiver(pre_delete, sender=Document)
def _announce_chunk_removal(sender, instance, **kwargs):
    chunk_ids = list(instance.chunks.values_list("pk", flat=True))
    if chunk_ids:
        transaction.on_commit(lambda: chunks_deleted.send(sender=Document, chunk_ids=chunk_ids))


@receiver(post_delete, sender=Document)
def _delete_stored_file(sender, instance, **kwargs):
    # Another document (another collection) may share the same stored file.
    storage.release_on_commit(instance.file.name)
    storage.release_on_commit(instance.searchable_file.name)
