"""Retriever versions: the rows the admin lists, switching one in and
rolling back. A switch has two sides: the row (claimed, its progress and
outcome recorded: switch_to) and the index (the version's index built in the
background while the serving one keeps serving, then swapped in atomically
through the index registry: switch_retriever).
"""

from __future__ import annotations

import logging
import os
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core.broker import enqueue_safely
from core.transitions import stale_before, transition
from retrieval import artifacts, indexing, passage_forms, stores
from retrieval.embedding import get_embedder, model_identity
from retrieval.models import RetrieverVersion
from retrieval.signals import retriever_switched

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
        defaults={
            "number": 0,
            "path": settings.RAG_EMBEDDER_PATH,
            "base_model": settings.RAG_EMBEDDER_PATH,
            "status": Status.RETIRED,
        },
    )
    sync_active()
    version.refresh_from_db()
    return version


def sync_active() -> None:
    """Mark the row of the serving retriever active (and only it), as the index registry says."""
    name = stores.active_retriever()["name"]
    with transaction.atomic():
        stale = RetrieverVersion.objects.filter(is_active=True).exclude(name=name)
        transition(stale, from_states=[Status.ACTIVE], to=Status.RETIRED)
        transition(stale, is_active=False)
        transition(RetrieverVersion.objects.filter(name=name, is_active=False), to=Status.ACTIVE, is_active=True)


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
                version = RetrieverVersion.objects.create(
                    number=number, name=name, path=path, base_model=base_model, status=Status.TRAINING, stage="queued"
                )
        except IntegrityError:
            continue
        _drop_leftover_index(name)
        return version
    raise RuntimeError("Could not number a new retriever version")


def _drop_leftover_index(name: str) -> None:
    """A new version's name can be an old one's whose row was deleted: its
    index folders (vectors of another model) must not be taken for this one's."""
    state = stores.registry().state()
    if name not in (state["active"]["name"], (state.get("staging") or {}).get("name")):
        stores.drop_index(name)


def is_stalled(version: RetrieverVersion) -> bool:
    """A switch whose row has not reported progress (written at least every
    FILL_BATCH passages) since stale_before() has lost its worker."""
    return version.status == Status.SWITCHING and version.updated < stale_before()


def abandon_stalled_switches(keep: int | None = None) -> int:
    """Switches whose worker stopped (killed, redeployed) mid-build: the row
    gets its former status back with the reason, and the index registry stops
    staging its index (writers stop writing to it; its folder stays, and a
    later switch to that version resumes from what it holds). `keep`: a row
    to leave alone (the one about to be resumed)."""
    abandoned = 0
    for version in RetrieverVersion.objects.filter(status=Status.SWITCHING, updated__lt=stale_before()).exclude(
        pk=keep
    ):
        taken = transition(
            RetrieverVersion.objects.filter(pk=version.pk, updated=version.updated),
            from_states=[Status.SWITCHING],
            to=version.switch_from or Status.EVALUATED,
            stage="",
            error="Switch interrupted: its worker stopped. Switch to this version again to resume.",
        )
        if taken:
            unstage(version.name)
            log.warning("Retriever %s: the switch in stalled; abandoned", version.name)
            abandoned += 1
    return abandoned


# -- the index side --------------------------------------------------------
def switch_retriever(name: str, model_path: str, progress=None, form: str | None = None) -> int:
    """Serve searches from the retriever version `name` (embedder folder
    `model_path`) with its passages in `form` (retrieval/passage_forms.py; by default
    RAG_PASSAGE_FORM): its index, in its own folder, is built or brought up
    to date in the background (documents indexed meanwhile are written to it
    as well as to the serving index, which keeps serving), then switched in
    atomically. Rolling back is switching to an earlier version; moving an
    index to another passage form is switching to the serving version in
    that form. Returns the number of vectors of the new index. On failure
    the old index keeps serving. `progress(done, total)` is called as
    passages are embedded."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or ""):
        raise ValueError(f"Bad retriever version name {name!r}.")
    form = form or settings.RAG_PASSAGE_FORM
    if form not in passage_forms.FORMS:
        raise ValueError(f"Unknown passage form {form!r}: {', '.join(passage_forms.FORMS)}.")
    model = model_identity(model_path)
    if not os.path.isdir(artifacts.local_model(model)):
        raise FileNotFoundError(f"Embedder folder not found: {model}")
    entry = {
        "name": name,
        "model": None if model == model_identity(settings.RAG_EMBEDDER_PATH) else model,
        "form": form,
    }
    same = lambda other: other and (other["name"], other["form"]) == (name, form)  # noqa: E731
    reg = stores.registry()
    with reg.changing() as state:
        staging = stores.resolved(state["staging"]) if state.get("staging") else None
        if same(stores.resolved(state["active"])):
            state["staging"] = None if same(staging) else state.get("staging")
            entry = None
        elif staging and not same(staging):
            raise RuntimeError(f"Retriever version {staging['name']} is being switched in; try again when it is done.")
        else:
            state["staging"] = entry
    if entry is None:
        return stores.store_for(name, model, form).current().ntotal
    try:
        store = stores.store_for(name, model, form)  # loads the model: a broken one must not stay staged
        indexing.fill(store, get_embedder(model), progress)
        with reg.changing() as state:
            state["active"], state["staging"] = entry, None
    except BaseException:
        with reg.changing() as state:
            if (state.get("staging") or {}).get("name") == name:
                state["staging"] = None
        raise
    # Catch what a writer that looked up its targets before the switch began
    # may have left only in the old index.
    indexing.check_index(repair=True)
    log.info("Searches now use retriever %s (%s), %s passages", name, model, form)
    retriever_switched.send(sender=None, name=name)
    return store.current().ntotal


def unstage(name: str) -> None:
    """Stop staging version `name` (its switch was abandoned): writers no
    longer write to its index."""
    with stores.registry().changing() as state:
        if (state.get("staging") or {}).get("name") == name:
            state["staging"] = None


# -- the row side ------------------------------------------------------------
def switch_to(version_id: int, progress=None) -> RetrieverVersion:
    """Switch searches to this version's model (also a rollback, to any earlier
    version or the base). Raises SwitchError when the version cannot be
    switched now; on any failure of the switch itself the row gets the error
    and its former status back, and the serving model stays in place. A
    switch of this version that stalled is resumed; one of another version
    that stalled is abandoned first (abandon_stalled_switches)."""
    version = RetrieverVersion.objects.get(pk=version_id)
    abandon_stalled_switches(keep=version.pk)
    former = version.status
    if former == Status.SWITCHING:
        if not is_stalled(version):
            raise SwitchError(f"{version.name} is being switched in now; its progress shows in the admin.")
        former = version.switch_from or Status.EVALUATED
    elif former not in SWITCHABLE:
        raise SwitchError(
            f"{version.name} is {version.get_status_display().lower()}; only a saved model can be switched in."
        )
    claimed = transition(
        RetrieverVersion.objects.filter(pk=version.pk, updated=version.updated),
        from_states=[version.status],
        to=Status.SWITCHING,
        stage="switching",
        switch_from=former,
        progress_done=0,
        progress_total=0,
        error="",
    )
    if claimed != 1:
        raise SwitchError(f"{version.name} changed meanwhile (another switch?); try again.")

    def report(done, total):  # also the heartbeat that tells a running switch from a stalled one
        transition(RetrieverVersion.objects.filter(pk=version.pk), progress_done=done, progress_total=total)
        if progress:
            progress(done, total)

    try:
        # Load the model first: one that cannot load must not get as far as
        # the index registry (writers would try to embed with it).
        _ = get_embedder(version.path).dimension
        switch_retriever(version.name, version.path, progress=report)
    except Exception as exc:
        log.exception("Switching to retriever %s failed", version.name)
        transition(RetrieverVersion.objects.filter(pk=version.pk), to=former, stage="", error=f"Switch failed: {exc}")
        raise
    with transaction.atomic():
        transition(
            RetrieverVersion.objects.filter(is_active=True).exclude(pk=version.pk), to=Status.RETIRED, is_active=False
        )
        transition(
            RetrieverVersion.objects.filter(pk=version.pk),
            to=Status.ACTIVE,
            is_active=True,
            stage="",
            switched_at=timezone.now(),
        )
    sync_active()
    version.refresh_from_db()
    log.info("Retriever %s is serving", version.name)
    return version


def switch_later(version_id: int) -> None:
    """Queue the switch for a worker, after the current transaction commits."""
    from retrieval.tasks import switch_retriever  # the tasks module imports this one

    transaction.on_commit(lambda: enqueue_safely(switch_retriever, version_id))
