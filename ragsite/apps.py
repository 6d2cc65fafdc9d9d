from django.apps import AppConfig


class RagsiteConfig(AppConfig):
    name = "ragsite"
    verbose_name = "RAG site"

    def ready(self):
        from celery.signals import worker_init

        from core.checks import register_all, stop_worker_on_errors

        from . import checks

        register_all(checks.ALL)  # the project's own; each app registers its own settings' checks
        worker_init.connect(stop_worker_on_errors, dispatch_uid="ragsite.checks", weak=False)
