"""What every app's system checks share (`manage.py check --tag rag`): the
tag, the rules for settings that take one of a few words and for numbers with
a meaningful range, loading a dotted path, and running the checks where
Django does not (the WSGI start-up, the Celery worker). Each app registers
its own checks for its own settings in its AppConfig.ready()
(ingestion/checks.py, retrieval/checks.py, generation/checks.py,
ragsite/checks.py), so a bad value stops start-up with a clear message
instead of failing the first request.

Cheap by design: they look at files and import small modules, never load a
model (no torch, no llama.cpp). Ids are stable: ragsite.E001 ... (each
function's docstring names its own)."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

TAG = "rag"


def register_all(checks) -> None:
    """Register an app's checks under TAG."""
    for check in checks:
        register(check, TAG)


def registered() -> set:
    """Every check registered under TAG (by every app)."""
    from django.core.checks.registry import registry

    return {check for check in registry.get_checks() if TAG in getattr(check, "tags", ())}


def choice_errors(choices: dict[str, tuple[str, str]]) -> list[Error]:
    """E008: a setting holds a word it does not know. `choices`: name -> (the
    pattern its value must match, the words the message offers)."""
    errors = []
    for name, (pattern, words) in choices.items():
        value = getattr(settings, name)
        if not re.fullmatch(pattern, str(value)):
            errors.append(
                Error(f"{name} is {value!r}; it takes {words}.", hint=f"Set {name} to {words}.", id="ragsite.E008")
            )
    return errors


def range_errors(ranges: dict[str, tuple[float, float, bool, bool]]) -> list[Error]:
    """E013: a threshold, share or timeout outside its meaningful range.
    `ranges`: name -> (low, high, low inclusive, high inclusive)."""
    errors = []
    for name, (low, high, low_in, high_in) in ranges.items():
        value = getattr(settings, name)
        if (value > low if not low_in else value >= low) and (value < high if not high_in else value <= high):
            continue
        span = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
        errors.append(
            Error(
                f"{name} is {value:g}, outside {span}.",
                hint=f"Set {name} within {span} (see .env.example).",
                id="ragsite.E013",
            )
        )
    return errors


def order_errors(pairs, error_id: str) -> list[Error]:
    """Limits out of order: each (shorter, longer, why) must hold shorter < longer."""
    errors = []
    for shorter, longer, why in pairs:
        if getattr(settings, shorter) >= getattr(settings, longer):
            errors.append(
                Error(
                    f"{shorter} ({getattr(settings, shorter)}) must be below {longer} ({getattr(settings, longer)}).",
                    hint=f"Seconds; {why}.",
                    id=error_id,
                )
            )
    return errors


def load_class(path: str, *methods: str):
    """(the class, None), or (None, what is wrong with the dotted path)."""
    try:
        found = import_string(path)
    except Exception as exc:  # ImportError, or whatever the module raises as it loads
        return None, f"does not import ({type(exc).__name__}: {exc})"
    if not isinstance(found, type):
        return None, f"is not a class ({type(found).__name__})"
    lacking = [name for name in methods if not hasattr(found, name)]
    if lacking:
        return None, f"has no {', '.join(lacking)}"
    return found, None


def callable_problem(path: str) -> str | None:
    """Why a dotted path is no function to call (None: it is one)."""
    try:
        found = import_string(path)
    except Exception as exc:  # ImportError, or whatever the module raises as it loads
        return f"does not import ({type(exc).__name__}: {exc})"
    return None if callable(found) else "is not callable"


def require_no_errors() -> None:
    """Run every system check as manage.py does (warnings go to stderr) and
    raise SystemCheckError, with the messages, on an error. For processes that
    do not run them themselves: gunicorn loading the WSGI module, and the Celery
    worker (whose Django fixup runs them but ignores the result)."""
    from django.core.management.base import BaseCommand

    BaseCommand().check()


def stop_worker_on_errors(**kwargs) -> None:
    """Celery's worker_init receiver: the worker does not start on a failing
    check. SystemExit, because Celery logs and swallows a receiver's exception."""
    from django.core.management.base import SystemCheckError

    try:
        require_no_errors()
    except SystemCheckError as exc:
        raise SystemExit(str(exc)) from None
