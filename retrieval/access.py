"""Who may read what a search finds: the chunks of searchable documents in
the collections a user may read, checked for each search's candidates.

A search asks about the few documents behind its candidates, never about
each candidate chunk: ChunkOwners keeps chunk -> document in memory, and
ReadableChunks checks those documents against the user's collections and
the search's narrowing. Rows leave only for the final hits, each checked again.
"""

from __future__ import annotations

import threading
import weakref
from array import array

import numpy as np
from django.db.models import Q

from ingestion.models import Chunk, Document
from retrieval.snapshots import IndexStore

Status = Document.Status
# Indexed documents, and ones being re-indexed after they were (their current
# chunks stay searchable until the new version is in).
SEARCHABLE_DOCUMENTS = Q(status=Status.INDEXED) | Q(
    indexed_at__isnull=False, status__in=[Status.PENDING, Status.PARSING, Status.EMBEDDING]
)
SEARCHABLE = Q(document__status=Status.INDEXED) | Q(  # the same, seen from a chunk
    document__indexed_at__isnull=False, document__status__in=[Status.PENDING, Status.PARSING, Status.EMBEDDING]
)


class ChunkOwners:
    """chunk id -> document id of every chunk in an index, in memory (16 bytes
    a chunk), so that the access filter asks the database about the few
    documents of a search's candidates and never about each candidate chunk.

    A chunk never moves to another document and primary keys are not reused
    (PostgreSQL sequences; SQLite AUTOINCREMENT), so a pair once read stays
    true: the map only grows, by the chunks above the highest id it holds,
    read when the index has a new version (a chunk is indexed after its row
    is committed). A chunk deleted since is harmless: its document check, or
    the final row load, drops it. An id the map lacks (indexed after the
    last read) is looked up in the database. One map per index store, so a
    store made anew (another data folder) starts from nothing."""

    READ_BATCH = 50_000

    def __init__(self):
        self._pairs = (np.zeros(0, np.int64), np.zeros(0, np.int64))  # ids ascending, their documents
        self._index = None  # the index version read up to (weakly: versions come and go)
        self._lock = threading.Lock()

    def refresh(self, index) -> None:
        if self._index is not None and self._index() is index:
            return
        with self._lock:
            if self._index is not None and self._index() is index:
                return
            ids, documents = self._pairs
            high = int(ids[-1]) if len(ids) else 0
            new_ids, new_documents = array("q"), array("q")
            while True:  # in batches by primary key: memory stays flat at a million rows
                batch = list(
                    Chunk.objects.filter(pk__gt=high).order_by("pk").values_list("pk", "document_id")[: self.READ_BATCH]
                )
                for pk, document in batch:
                    new_ids.append(pk)
                    new_documents.append(document)
                if len(batch) < self.READ_BATCH:
                    break
                high = batch[-1][0]
            if new_ids:
                self._pairs = (
                    np.concatenate([ids, np.frombuffer(new_ids, dtype=np.int64)]),
                    np.concatenate([documents, np.frombuffer(new_documents, dtype=np.int64)]),
                )
            self._index = weakref.ref(index)

    def lookup(self, chunk_ids) -> tuple[list[tuple[int, int]], list[int]]:
        """([(chunk id, document id)] of the ids the map holds, [ids it does not])."""
        ids, documents = self._pairs
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, wanted), max(len(ids) - 1, 0))
        held = ids[at] == wanted if len(ids) else np.zeros(len(wanted), dtype=bool)
        return (list(zip(wanted[held].tolist(), documents[at[held]].tolist())), wanted[~held].tolist())


_OWNERS: weakref.WeakKeyDictionary[IndexStore, ChunkOwners] = weakref.WeakKeyDictionary()
_OWNERS_LOCK = threading.Lock()


def chunk_owners(store: IndexStore, index) -> ChunkOwners:
    """The store's ChunkOwners, read up to `index` (its current version)."""
    with _OWNERS_LOCK:
        owners = _OWNERS.get(store)
        if owners is None:
            owners = _OWNERS[store] = ChunkOwners()
    owners.refresh(index)
    return owners


class ReadableChunks:
    """The access filter, the same for every retriever: chunks of searchable
    documents in the collections the user may read. Remembers what it looked up."""

    def __init__(self, collection_ids, narrow: Q | None = None, owners: ChunkOwners | None = None):
        self.collection_ids = collection_ids
        self.narrow = Q() if narrow is None else narrow
        self.owners = owners
        self.allowed: set[int] = set()
        self.checked: set[int] = set()
        self.allowed_documents: set[int] = set()
        self.checked_documents: set[int] = set()

    @staticmethod
    def first_fetch(want: int, ntotal: int) -> int:
        return min(ntotal, max(2 * want, 32))  # widened by top() when the filter leaves too few

    def check_first(self, searches, want: int) -> None:
        """Check the first candidates of several searches (search, ntotal) at once."""
        ids = []
        for search, ntotal in searches:
            ids.extend(int(i) for i in np.ravel(search(self.first_fetch(want, ntotal))[1]) if i >= 0)
        self._check(ids)

    def top(self, search, ntotal: int, want: int) -> list[tuple[int, float]]:
        """The best `want` readable (id, score) pairs of `search(n)`, which
        returns (scores, ids) best first; asks for more until enough are found."""
        fetch = self.first_fetch(want, ntotal)
        while True:
            scores, ids = search(fetch)
            scores, ids = np.ravel(scores), np.ravel(ids)
            pairs = [(int(i), float(s)) for i, s in zip(ids, scores) if i >= 0]
            self._check([i for i, _ in pairs])
            hits = [(i, s) for i, s in pairs if i in self.allowed][:want]
            if len(hits) >= want or len(pairs) < fetch or fetch >= ntotal:
                return hits
            fetch = min(ntotal, fetch * 4)

    def _check(self, ids) -> None:
        # chunk -> document from the owner map (the database for chunks it
        # lacks), then one indexed lookup of the few documents against the
        # collections and filters (a join over chunks was planned by SQLite
        # as a scan of every chunk of the readable collections: 220 ms at a
        # million chunks). Only primary keys here: rows are loaded for the
        # final hits alone.
        new = [i for i in dict.fromkeys(ids) if i not in self.checked]
        if not new:
            return
        self.checked.update(new)
        owners, missing = self.owners.lookup(new) if self.owners is not None else ([], new)
        if missing:
            owners += list(Chunk.objects.filter(pk__in=missing).order_by().values_list("pk", "document_id"))
        unknown = {document for _, document in owners} - self.checked_documents
        if unknown:
            self.checked_documents |= unknown
            self.allowed_documents.update(
                Document.objects.filter(pk__in=unknown, collection_id__in=self.collection_ids)
                .filter(SEARCHABLE_DOCUMENTS)
                .filter(self.narrow)
                .order_by()
                .values_list("pk", flat=True)
            )
        self.allowed.update(pk for pk, document in owners if document in self.allowed_documents)

    def rows(self, ids) -> dict:
        """The chunks (with document and collection) of these allowed ids.
        Each row's own document is checked again: whatever the owner map
        says, nothing of a document the user may not read leaves here."""
        found = (
            Chunk.objects.select_related("document", "document__collection")
            .order_by()
            .in_bulk([i for i in ids if i in self.allowed])
        )
        return {pk: chunk for pk, chunk in found.items() if chunk.document_id in self.allowed_documents}
