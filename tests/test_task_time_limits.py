"""A task's time limits are the worker's (issue #26, L7): the message a
sender publishes carries none, so the worker's own settings and annotations
apply (tests/e2e/test_time_limits.py: a real worker enforcing them)."""

from unittest import mock

import kombu
import pytest

from ragsite.celery import app
from retrieval import tasks


@pytest.fixture
def published():
    sent = []
    with mock.patch.object(kombu.Producer, "publish", lambda self, body, **options: sent.append(options)):
        yield sent


def test_a_long_task_is_sent_without_the_senders_time_limits(published, settings):
    assert tasks.rebuild_index.soft_time_limit == settings.RAG_LONG_TASK_SOFT_TIME_LIMIT  # the sender's annotation
    tasks.rebuild_index.delay()
    (message,) = published
    assert tuple(message["headers"]["timelimit"]) == (None, None)
    assert message["headers"]["task"] == "retrieval.tasks.rebuild_index"


def test_the_worker_then_runs_it_under_its_own(settings):
    from celery.worker.request import Request

    request = Request(
        mock.Mock(
            headers={"id": "1", "task": "retrieval.tasks.rebuild_index", "timelimit": (None, None)},
            payload=((), {}, {}),
            body=b"",
            content_type="application/json",
            content_encoding="utf-8",
            delivery_info={},
            properties={},
        ),
        app=app,
        task=tasks.rebuild_index,
    )
    pool = mock.Mock()
    request.execute_using_pool(pool)
    options = pool.apply_async.call_args.kwargs
    assert options["soft_timeout"] == tasks.rebuild_index.soft_time_limit
    assert options["timeout"] == tasks.rebuild_index.time_limit
