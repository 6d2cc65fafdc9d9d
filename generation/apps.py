from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from core.checks import register_all

        from . import checks

        register_all(checks.ALL)  # this app's settings, checked at start
        from django.db.models.signals import pre_delete

        from generation.withdrawal import withdraw_deleted_document
        from ingestion.models import Document

        pre_delete.connect(withdraw_deleted_document, sender=Document, dispatch_uid="generation.withdraw")

        from generation import receivers
        from ingestion.signals import chunks_deleted, document_chunked
        from retrieval.signals import retriever_switched

        # The answerability model is fitted on the corpus and the retriever: a change of either asks for a refit.
        document_chunked.connect(receivers.corpus_changed, dispatch_uid="generation.refit.added")
        chunks_deleted.connect(receivers.corpus_changed, dispatch_uid="generation.refit.removed")
        retriever_switched.connect(receivers.retriever_switched, dispatch_uid="generation.refit.retriever")
