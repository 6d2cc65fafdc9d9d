from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Documents"

    def ready(self):
        from core.checks import register_all

        from . import checks

        register_all(checks.ALL)  # this app's settings, checked at start
        from . import signals  # noqa: F401  (connects the model signal handlers)
