"""The Celery application: Redis when REDIS_URL is set, else Kombu's
filesystem transport under the data folder (no server needed)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")

app = Celery("ragsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
