"""Talking to the Celery broker from any app: queue a task without letting a
broker outage break the request, and ask whether a worker is listening. They
use the current Celery app (ragsite/celery.py, the project shell, makes it).
"""

import logging

from celery import current_app


def workers_online(timeout: float = 1.0, attempts: int = 1) -> bool:
    """True when at least one worker answers a ping on the broker within
    `timeout` seconds, asked up to `attempts` times (a solo-pool worker busy
    with a task answers only between tasks)."""
    for _ in range(attempts):
        try:
            if current_app.control.ping(timeout=timeout):
                return True
        except Exception:  # transports without broadcast, or a broker that is down
            return False
    return False


def enqueue_safely(task, *args) -> None:
    """Queue a task; a broker outage is logged and must not break the request that caused it."""
    try:
        task.delay(*args)
    except Exception:
        logging.getLogger(__name__).exception("Could not enqueue %s%r", task.name, args)
