from django.apps import AppConfig


class RagsiteConfig(AppConfig):
    name = "ragsite"
    verbose_name = "RAG site"

    def ready(self):
        from celery.signals import worker_init
        from django.core.checks import register

        from . import checks

        for check in checks.ALL:
            register(check, checks.TAG)
        worker_init.connect(checks.stop_worker_on_errors, dispatch_uid="ragsite.checks", weak=False)
