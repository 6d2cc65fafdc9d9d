"""Answerability model versions: the one answers decide with, switching one
in, and asking for a refit when the corpus or the serving retriever changes.
The fit itself is generation/fitting.py; the artifact, generation/answerability.py.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone

from core import filestore
from generation import answerability
from generation.models import AnswerabilityVersion

log = logging.getLogger(__name__)

Status = AnswerabilityVersion.Status
PENDING_KEY = "answerability:refit-pending"

_loaded: dict = {}  # (pk, path) -> Model, or the refusal's message
_lock = threading.Lock()


def current() -> answerability.Model:
    """The active version's model, loaded once per process; the packaged one
    when none is active, or when the active one's artifact cannot be used
    here (fitted on other signals, or gone): that is logged, once."""
    try:
        row = AnswerabilityVersion.objects.filter(is_active=True).values_list("pk", "path", "artifact").first()
    except DatabaseError:  # no table yet (a migration pending): the packaged gate still answers
        return answerability.PACKAGED
    if row is None:
        return answerability.PACKAGED
    key = row[:2]
    with _lock:
        found = _loaded.get(key)
        if found is None:
            try:
                found = answerability.load(filestore.local_file(row[1], row[2]))
            except (OSError, ValueError) as error:
                found = str(error)
                log.warning("Answerability model %s not used, the packaged gate decides: %s", row[0], error)
            _loaded[key] = found
    return found if isinstance(found, answerability.Model) else answerability.PACKAGED


def refusal(version: AnswerabilityVersion) -> str:
    """Why this version's artifact would not load here ("" when it loads)."""
    try:
        answerability.load(filestore.local_file(version.path, version.artifact))
    except (OSError, ValueError) as error:
        return str(error)
    return ""


def new_version(reason: str) -> AnswerabilityVersion:
    """A row for a fit about to start: "a<n>", its artifact under RAG_ANSWERABILITY_DIR."""
    with transaction.atomic():
        number = (AnswerabilityVersion.objects.select_for_update().aggregate(top=Max("number"))["top"] or 0) + 1
        name = f"a{number}"
        return AnswerabilityVersion.objects.create(
            number=number,
            name=name,
            path=str(settings.RAG_ANSWERABILITY_DIR / f"{name}.json"),
            reason=reason[:200],
            stage="queued",
        )


def claim(version_id: int) -> bool:
    """Take a queued fit (False: another worker has it, or it is done)."""
    return bool(
        AnswerabilityVersion.objects.filter(pk=version_id, status=Status.FITTING, stage="queued").update(
            stage="starting"
        )
    )


def activate(version: AnswerabilityVersion) -> None:
    """Answers decide with this version from now on; the former one retires."""
    with transaction.atomic():
        AnswerabilityVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(
            is_active=False, status=Status.RETIRED
        )
        AnswerabilityVersion.objects.filter(pk=version.pk).update(
            is_active=True, status=Status.ACTIVE, switched_at=timezone.now()
        )
    log.info("Answerability model %s now decides", version.name)


def deactivate() -> None:
    """Back to the packaged gate."""
    AnswerabilityVersion.objects.filter(is_active=True).update(is_active=False, status=Status.RETIRED)


def request_refit(reason: str) -> bool:
    """Queue a refit RAG_ANSWERABILITY_DELAY seconds from now, unless one is
    already pending (a burst of uploads asks once) or autofit is off. Returns
    whether one was queued."""
    if not settings.RAG_ANSWERABILITY_AUTOFIT:
        return False
    delay = settings.RAG_ANSWERABILITY_DELAY
    if not cache.add(PENDING_KEY, reason[:200], timeout=delay + 60):
        return False
    from generation import tasks  # the task module imports the fitting run and its models

    try:
        tasks.fit_answerability.apply_async(args=(reason,), countdown=delay)
    except Exception:  # a broker outage must not break the upload that asked
        cache.delete(PENDING_KEY)
        log.exception("Could not queue an answerability refit (%s)", reason)
        return False
    return True


def refit_started() -> None:
    """The pending refit runs: later changes queue another."""
    cache.delete(PENDING_KEY)
