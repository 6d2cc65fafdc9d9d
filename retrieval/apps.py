from django.apps import AppConfig


class RetrievalConfig(AppConfig):
    name = "retrieval"

    def ready(self):
        from core.checks import register_all

        from . import checks

        register_all(checks.ALL)  # this app's settings, checked at start
        from ingestion.signals import chunks_deleted, document_chunked

        from . import receivers

        document_chunked.connect(receivers.embed_chunked_document, dispatch_uid="retrieval.embed")
        chunks_deleted.connect(receivers.remove_deleted_chunks, dispatch_uid="retrieval.remove")
