"""Generator versions: the rows the admin lists, switching one in and rolling
back. The row says what a version is and how it did; generation/serving.py's
registry file says which one answers, and every process follows it.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core import filestore
from core.broker import enqueue_safely
from core.transitions import transition
from generation import serving
from generation.models import GeneratorVersion

log = logging.getLogger(__name__)

Status = GeneratorVersion.Status
PACKAGED = "packaged"
# A version can be switched in once its GGUF is exported and checked; a failed run has none.
SWITCHABLE = (Status.EVALUATED, Status.REJECTED, Status.RETIRED, Status.ACTIVE)


class SwitchError(RuntimeError):
    """The version cannot be switched in now; the message says why."""


def packaged_version() -> GeneratorVersion:
    """The row of the packaged model (created on first use)."""
    version, _ = GeneratorVersion.objects.get_or_create(
        name=PACKAGED,
        defaults={
            "number": 0,
            "path": str(settings.RAG_GENERATOR_MODEL),
            "base_model": str(settings.RAG_GENERATOR_MODEL),
            "status": Status.RETIRED,
        },
    )
    sync_active()
    version.refresh_from_db()
    return version


def sync_active() -> None:
    """Mark the row of the serving generator active (and only it), as the registry says."""
    name = serving.serving_name()
    with transaction.atomic():
        stale = GeneratorVersion.objects.filter(is_active=True).exclude(name=name)
        transition(stale, from_states=[Status.ACTIVE], to=Status.RETIRED)
        transition(stale, is_active=False)
        transition(GeneratorVersion.objects.filter(name=name, is_active=False), to=Status.ACTIVE, is_active=True)


def serving_version() -> GeneratorVersion:
    packaged = packaged_version()
    return GeneratorVersion.objects.filter(is_active=True).first() or packaged


def new_version(base_model: str) -> GeneratorVersion:
    """A row for a fine-tuning run about to start: "v<n>", its folder under RAG_GENERATOR_DIR."""
    packaged_version()
    for _ in range(5):  # two runs started at once: the loser takes the next number
        number = (GeneratorVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1
        name = f"v{number}"
        folder = os.path.join(str(settings.RAG_GENERATOR_DIR), name)
        try:
            with transaction.atomic():
                return GeneratorVersion.objects.create(
                    number=number,
                    name=name,
                    path=os.path.join(folder, "model.gguf"),
                    checkpoint=os.path.join(folder, "checkpoint"),
                    base_model=base_model,
                    status=Status.TRAINING,
                    stage="queued",
                )
        except IntegrityError:
            continue
    raise RuntimeError("Could not number a new generator version")


def check_loads(path: str) -> None:
    """Load the model the way the serving engine will (a broken file must not
    be switched in); raises SwitchError with the reason."""
    from generation.engines import engine_for

    if not os.path.isfile(path):
        raise SwitchError(f"The model file is missing: {path}")
    try:
        engine_for(path).count_tokens("A test.")
    except Exception as exc:
        raise SwitchError(f"The model does not load: {exc}") from exc


def switch_to(version_id: int) -> GeneratorVersion:
    """Answer with this version from now on, in every process (also a
    rollback, to any earlier version or the packaged model). Raises
    SwitchError when it cannot; the serving model then stays."""
    version = GeneratorVersion.objects.get(pk=version_id)
    if version.status not in SWITCHABLE:
        raise SwitchError(
            f"{version.name} is {version.get_status_display().lower()}; only an exported model can be switched in."
        )
    if version.name != PACKAGED:
        check_loads(filestore.local_file(version.path, version.artifact))
    serving.set_serving(version.name, None if version.name == PACKAGED else version.path)
    with transaction.atomic():
        transition(
            GeneratorVersion.objects.filter(is_active=True).exclude(pk=version.pk), to=Status.RETIRED, is_active=False
        )
        transition(
            GeneratorVersion.objects.filter(pk=version.pk), to=Status.ACTIVE, is_active=True, switched_at=timezone.now()
        )
    version.refresh_from_db()
    log.info("Generator %s is answering (%s)", version.name, serving.serving_model())
    return version


def switch_later(version_id: int) -> None:
    """Queue the switch for a worker, after the current transaction commits."""
    from generation.tasks import switch_generator

    transaction.on_commit(lambda: enqueue_safely(switch_generator, version_id))
