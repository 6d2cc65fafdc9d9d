"""One way to change the state of a row that workers claim: a document being
ingested (ingestion/services.py), a retriever version being trained or
switched in (retrieval/versions.py, retrieval/finetune/pipeline.py).

Every change is one conditional UPDATE: it applies only to rows still in the
states the caller expects (so of two actors racing, one wins and the other
sees 0 rows changed), and it stamps `updated`, which `auto_now` does not do
for a queryset update. `updated` (or a heartbeat field) older than
`stale_before()` means the worker on that row has stopped.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone


def stale_before(now: datetime.datetime | None = None) -> datetime.datetime:
    """A claim or heartbeat older than this belongs to a worker that stopped
    (RAG_CLAIM_TIMEOUT seconds)."""
    return (now or timezone.now()) - datetime.timedelta(seconds=settings.RAG_CLAIM_TIMEOUT)


def transition(rows: QuerySet, *, to: str | None = None, from_states: Iterable[str] | None = None, **fields) -> int:
    """Move `rows` that are in one of `from_states` (any state when None) to
    status `to` (kept when None), setting `fields` and stamping `updated`.
    Returns how many rows changed: 0 means none was in an expected state."""
    if from_states is not None:
        rows = rows.filter(status__in=list(from_states))
    if to is not None:
        fields["status"] = to
    fields.setdefault("updated", timezone.now())
    return rows.update(**fields)
