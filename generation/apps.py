from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from django.db.models.signals import pre_delete

        from generation.withdrawal import withdraw_deleted_document
        from ingestion.models import Document

        pre_delete.connect(withdraw_deleted_document, sender=Document, dispatch_uid="generation.withdraw")
