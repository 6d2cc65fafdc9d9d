"""The Celery application: Redis when REDIS_URL is set, else Kombu's
filesystem transport under the data folder (no server needed)."""

import os

from celery import Celery
from celery.signals import before_task_publish

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")

app = Celery("ragsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def leave_time_limits_to_the_worker(headers=None, **kwargs):
    """Celery puts the sending process's time limits of a task (its
    annotations: CELERY_TASK_ANNOTATIONS) into the message, and the worker
    runs the task under those: a limit set in the worker's environment alone
    never applied (issue #26, L7). Cleared here, the worker's own settings
    and annotations decide."""
    if headers is not None and "timelimit" in headers:
        headers["timelimit"] = (None, None)
