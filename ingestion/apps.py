from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Documents"

    def ready(self):
        from . import signals  # noqa: F401  (connects the model signal handlers)
