"""The index registry in the database, for indexes on Milvus: which retriever
version serves searches, and which one is being built to replace it, seen
by every host (the FAISS stores keep theirs in a file beside them:
retrieval/snapshots.py IndexRegistry, whose state this one mirrors)."""

from __future__ import annotations

import contextlib
import copy

from django.db import IntegrityError, transaction

from retrieval.models import IndexRegistryState
from retrieval.snapshots import IndexRegistry

KEY = "index"


class DatabaseRegistry:
    DEFAULT = IndexRegistry.DEFAULT

    def state(self) -> dict:
        found = IndexRegistryState.objects.filter(key=KEY).values_list("state", flat=True).first()
        return copy.deepcopy(found or self.DEFAULT)

    @contextlib.contextmanager
    def changing(self):
        """Yields the state to change in place; saved on success, in one
        transaction holding the row's lock (one change at a time, on any host)."""
        with transaction.atomic():
            row = self._locked()
            state = copy.deepcopy(row.state or self.DEFAULT)
            yield state
            row.state = state
            row.save(update_fields=["state", "updated"])

    @staticmethod
    def _locked() -> IndexRegistryState:
        for _attempt in range(2):
            row = IndexRegistryState.objects.select_for_update().filter(key=KEY).first()
            if row is not None:
                return row
            try:
                with transaction.atomic():
                    IndexRegistryState.objects.create(key=KEY, state=copy.deepcopy(DatabaseRegistry.DEFAULT))
            except IntegrityError:  # another host made it first
                pass
        return IndexRegistryState.objects.select_for_update().get(key=KEY)
