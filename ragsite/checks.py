"""System checks of the project's own settings (core/checks.py says how every
app's run): the API's throttle rates and the Celery task time limits. The
apps check their own settings (ingestion/, retrieval/, generation/checks.py)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import Error

from core.checks import order_errors


def check_throttle_rates(app_configs=None, **kwargs):
    """E008: an API throttle rate does not parse."""
    errors = []
    rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {})
    for scope, rate in rates.items():
        if rate is not None and not re.fullmatch(r"\d+/[smhd]\w*", str(rate)):
            errors.append(
                Error(
                    f"The API throttle rate of {scope!r} is {rate!r}, not <number>/<period>.",
                    hint="Write it as 600/min (periods: s, min, hour, day): see the *_RATE_LIMIT settings in .env.example.",
                    id="ragsite.E008",
                )
            )
    return errors


def check_task_time_limits(app_configs=None, **kwargs):
    """E015: a task's soft time limit not below its hard one."""
    return order_errors(
        [
            (
                "RAG_TASK_SOFT_TIME_LIMIT",
                "RAG_TASK_HARD_TIME_LIMIT",
                "the soft limit fails the document; the hard one kills the worker",
            ),
            (
                "RAG_LONG_TASK_SOFT_TIME_LIMIT",
                "RAG_LONG_TASK_HARD_TIME_LIMIT",
                "the soft limit fails the run; the hard one kills the worker",
            ),
        ],
        "ragsite.E015",
    )


ALL = (check_throttle_rates, check_task_time_limits)
