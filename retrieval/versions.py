"""Retriever versions in the database: the rows the admin lists, switching
one in and rolling back. The index side of a switch (build the version's
index in the background, then swap atomically) is retrieval.services.switch_retriever;
this module claims the row, calls it, and records the outcome.
"""

from __future__ import annotations

import logging
import os
import shutil

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from retrieval import services
from retrieval.embedding import get_embedder
from retrieval.models import RetrieverVersion

log = logging.getLogger(__name__)

Status = RetrieverVersion.Status
BASE = "base"
# A version can be switched in once its model is saved; a failed run has none.
SWITCHABLE = (Status.EVALUATED, Status.REJECTED, Status.RETIRED, Status.ACTIVE)


class SwitchError(RuntimeError):
    """The version cannot be switched in now; the message says why."""


def base_version() -> RetrieverVersion:
    """The row of the packaged base model (created on first use)."""
    version, _ = RetrieverVersion.objects.get_or_create(
        name=BASE,
        defaults={"number": 0, "path": settings.RAG_EMBEDDER_PATH, "base_model": settings.RAG_EMBEDDER_PATH,
                  "status": Status.RETIRED},
    )
    sync_active()
    version.refresh_from_db()
    return version


def sync_active() -> None:
    """Mark the row of the serving retriever active (and only it), as the index registry says."""
    name = services.active_retriever()["name"]
    with transaction.atomic():
        stale = RetrieverVersion.objects.filter(is_active=True).exclude(name=name)
        stale.filter(status=Status.ACTIVE).update(status=Status.RETIRED)
        stale.update(is_active=False)
        RetrieverVersion.objects.filter(name=name, is_active=False).update(is_active=True, status=Status.ACTIVE)


def next_number() -> int:
    return (RetrieverVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1


def new_version(base_model: str) -> RetrieverVersion:
    """A row for a fine-tuning run about to start: "v<n>", its folder under RAG_RETRIEVER_DIR."""
    base_version()
    for _ in range(5):  # two runs started at once: the loser takes the next number
        number = next_number()
        name = f"v{number}"
        path = os.path.join(str(settings.RAG_RETRIEVER_DIR), name, "model")
        try:
            with transaction.atomic():
                version = RetrieverVersion.objects.create(number=number, name=name, path=path, base_model=base_model,
                                                          status=Status.TRAINING, stage="queued")
        except IntegrityError:
            continue
        _drop_leftover_index(name)
        return version
    raise RuntimeError("Could not number a new retriever version")


def _drop_leftover_index(name: str) -> None:
    """A new version's name can be an old one's whose row was deleted: its
    index folder (vectors of another model) must not be taken for this one's."""
    state = services.registry().state()
    if name not in (state["active"]["name"], (state.get("staging") or {}).get("name")):
        shutil.rmtree(os.path.join(str(settings.RAG_INDEX_DIR), name), ignore_errors=True)


def switch_to(version_id: int, progress=None) -> RetrieverVersion:
    """Switch searches to this version's model (also a rollback, to any earlier
    version or the base). Raises SwitchError when the version cannot be
    switched now; on any failure of the switch itself the row gets the error
    and its former status back, and the serving model stays in place."""
    version = RetrieverVersion.objects.get(pk=version_id)
    former = version.status
    if former not in SWITCHABLE:
        raise SwitchError(f"{version.name} is {version.get_status_display().lower()}; only a saved model can be switched in.")
    claimed = RetrieverVersion.objects.filter(pk=version.pk, status=former).update(
        status=Status.SWITCHING, stage="switching", progress_done=0, progress_total=0, error="")
    if claimed != 1:
        raise SwitchError(f"{version.name} changed meanwhile (another switch?); try again.")

    def report(done, total):
        RetrieverVersion.objects.filter(pk=version.pk).update(progress_done=done, progress_total=total)
        if progress:
            progress(done, total)

    try:
        # Load the model first: one that cannot load must not get as far as
        # the index registry (writers would try to embed with it).
        get_embedder(version.path).dimension
        services.switch_retriever(version.name, version.path, progress=report)
    except Exception as exc:
        log.exception("Switching to retriever %s failed", version.name)
        RetrieverVersion.objects.filter(pk=version.pk).update(status=former, stage="", error=f"Switch failed: {exc}")
        raise
    with transaction.atomic():
        RetrieverVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(is_active=False, status=Status.RETIRED)
        RetrieverVersion.objects.filter(pk=version.pk).update(status=Status.ACTIVE, is_active=True, stage="",
                                                              switched_at=timezone.now())
    sync_active()
    version.refresh_from_db()
    log.info("Retriever %s is serving", version.name)
    return version


def switch_later(version_id: int) -> None:
    """Queue the switch for a worker, after the current transaction commits."""
    from retrieval.tasks import switch_retriever

    transaction.on_commit(lambda: services.enqueue_safely(switch_retriever, version_id))
