"""The Celery application: Redis when REDIS_URL is set, else Kombu's
filesystem transport under the data folder (no server needed)."""

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")

app = Celery("ragsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def workers_online(timeout: float = 1.0) -> bool:
    """True when at least one worker answers a ping on the broker."""
    try:
        return bool(app.control.ping(timeout=timeout))
    except Exception:  # transports without broadcast, or a broker that is down
        return False


def enqueue_safely(task, *args) -> None:
    """Queue a task; a broker outage is logged and must not break the request that caused it."""
    try:
        task.delay(*args)
    except Exception:
        logging.getLogger(__name__).exception("Could not enqueue %s%r", task.name, args)
