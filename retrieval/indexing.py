"""Writing the indexes: a document's passages in, deleted chunks out, a whole
store filled or rebuilt, its integrity checked, and its vector index
maintained (flat to HNSW, compaction) off the write path.

Every write changes both the dense vectors and the BM25 terms, whatever the
search settings, so either retriever can be switched on at any time. One
loop embeds passages in batches (`_embedded`); each job decides how its
batches are written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext

import numpy as np
from django.conf import settings
from django.db import transaction

from core.broker import enqueue_safely
from ingestion import services as ingestion
from ingestion.models import Chunk
from retrieval import passage_forms
from retrieval.access import SEARCHABLE
from retrieval.embedding import get_embedder
from retrieval.faiss_index import FLAT, HNSW, IndexParams
from retrieval.snapshots import IndexStore
from retrieval.stores import active_retriever, get_store, index_params, store_for, store_in, write_targets

log = logging.getLogger(__name__)

# Progress (and the claim's heartbeat, and the check for a cancel) is written
# at most this often, after an embedding batch (RAG_EMBED_BATCH_SIZE): it
# moves steadily, where a write every 256 passages sat at 0/366 for 24 s.
PROGRESS_SECONDS = 1.0
FILL_BATCH = 4096  # passages embedded per write while filling a store


def _embedded(
    embedder, batches: Iterable[list[tuple[int, str]]], present=frozenset()
) -> Iterator[tuple[list[tuple[int, str]], list[int], np.ndarray | None]]:
    """Per batch of (chunk id, text): (the batch, the ids embedded, their
    vectors); passages whose id is in `present` already have a vector and are
    not embedded again (None when none was embedded)."""
    for part in batches:
        dense = [(pk, text) for pk, text in part if pk not in present]
        vectors = embedder.embed_passages([text for _, text in dense]) if dense else None
        yield part, [pk for pk, _ in dense], vectors


def _slices(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


PASSAGE_FIELDS = ("pk", "text", "heading", "document__title")


def _rows(chunk_ids: list[int], size: int, form: str) -> Iterator[list[tuple[int, str]]]:
    """The (id, passage as an index of `form` reads it) of these chunks, read
    from the database in batches (a chunk deleted meanwhile is left out)."""
    for part in _slices(chunk_ids, size):
        texts = {
            pk: passage_forms.read(form, text, title, heading)
            for pk, text, heading, title in Chunk.objects.filter(pk__in=part).values_list(*PASSAGE_FIELDS)
        }
        yield [(pk, texts[pk]) for pk in part if pk in texts]


# -- a document in, chunks out ---------------------------------------------
def index_document(document_id: int) -> None:
    """Embed a chunked document's passages that have no vector yet and add
    them, with their BM25 terms, to every target index (the active one, and a
    version being built), in one write per index. Raises ingestion.Cancelled
    if the document is cancelled or deleted meanwhile (checked at every batch)."""
    rows = list(Chunk.objects.filter(document_id=document_id).order_by("ordinal").values_list(*PASSAGE_FIELDS))
    targets = write_targets()
    for _store, embedder in targets:
        embedder.warm_up()  # a first load takes seconds: done before the heartbeat below
    plans = []
    for store, embedder in targets:
        chunks = [(pk, passage_forms.read(store.form, text, title, heading)) for pk, text, heading, title in rows]
        present = store.current().contains([pk for pk, _ in chunks])
        todo = [(pk, text) for pk, text in chunks if pk not in present]  # unchanged passages keep their vectors
        todo.sort(key=lambda item: len(item[1]), reverse=True)  # batches of like length pad least
        in_bm25 = store.current_bm25().contains([pk for pk, _ in chunks])
        lexical = [(pk, text) for pk, text in chunks if pk not in in_bm25]  # also heals an index made before BM25
        plans.append((store, embedder, todo, lexical))
    total = sum(len(todo) for _s, _e, todo, _l in plans)
    done = len(rows) * len(plans) - total
    progress = lambda: ingestion.record_progress(document_id, done // len(plans))  # noqa: E731
    progress()
    started = written = time.perf_counter()
    for store, embedder, todo, lexical in plans:
        ids, vectors = [], []
        for part, embedded, part_vectors in _embedded(embedder, _slices(todo, settings.RAG_EMBED_BATCH_SIZE)):
            ids.extend(embedded)
            vectors.append(part_vectors)
            done += len(part)
            if time.perf_counter() - written >= PROGRESS_SECONDS:
                progress()
                written = time.perf_counter()
        progress()
        if ids or lexical:
            with store.write() as snapshot:
                # A chunk deleted since it was read had its removal run already, or it waits
                # for this write: add only the chunks that still exist (under the writer lock).
                alive = set(
                    Chunk.objects.filter(pk__in=[*ids, *(pk for pk, _ in lexical)]).values_list("pk", flat=True)
                )
                if keep := [n for n, pk in enumerate(ids) if pk in alive]:
                    snapshot.vectors.add([ids[n] for n in keep], np.vstack(vectors)[keep])
                if lexical := [(pk, text) for pk, text in lexical if pk in alive]:
                    snapshot.bm25.add([pk for pk, _ in lexical], [text for _, text in lexical])
                _plan_maintenance(store, snapshot.vectors)
    ingestion.mark_indexed(document_id)
    log.info(
        "Document %s: embedded %s passages into %s index(es) in %.2f s",
        document_id,
        total,
        len(plans),
        time.perf_counter() - started,
    )


def remove_chunks(chunk_ids: list[int]) -> int:
    """Remove chunks from every target's indexes; returns how many vectors
    went from the active one."""
    if not chunk_ids:
        return 0
    removed = []
    for store, _embedder in write_targets():
        with store.write() as snapshot:
            snapshot.bm25.remove(chunk_ids)
            removed.append(snapshot.vectors.remove(chunk_ids))
            _plan_maintenance(store, snapshot.vectors)
    return removed[0]


# -- a whole store ---------------------------------------------------------
def fill(store: IndexStore, embedder, progress=None, *, fresh: bool = False) -> int:
    """Make `store` hold exactly the searchable chunks; returns how many it holds.

    By default the missing passages are embedded in batches, each batch one
    write (other writers interleave, and a run that stops resumes from what
    was written), and passages no searchable chunk owns are removed. With
    `fresh` the indexes are built anew (exact or HNSW by the corpus size) in
    one write: the old ones serve until the new ones are complete.
    `progress(done, total)` is called after each batch."""
    expected = list(Chunk.objects.filter(SEARCHABLE).order_by("pk").values_list("pk", flat=True))
    if fresh or store.manifest() is None:
        with store.write(fresh=True, params=index_params(len(expected))) as snapshot:
            snapshot.bm25.dirty = True  # an empty corpus is a BM25 index too
            if fresh:
                _add_missing(
                    expected, embedder, lambda: nullcontext(snapshot), frozenset(), frozenset(), store.form, progress
                )
                return len(expected)
    present = set(store.current().ids().tolist())
    lexical = set(store.current_bm25().ids().tolist())
    _add_missing(expected, embedder, store.write, present, lexical, store.form, progress)
    extra = (present | lexical) - set(expected)
    if extra:
        with store.write() as snapshot:
            snapshot.vectors.remove(sorted(extra))
            snapshot.bm25.remove(sorted(extra))
    return len(expected)


def _add_missing(expected: list[int], embedder, write, present, lexical, form: str, progress=None) -> None:
    """Add the `expected` chunks that lack a vector (not in `present`) or BM25
    terms (not in `lexical`), a batch per `write()`."""
    missing = [pk for pk in expected if pk not in present or pk not in lexical]
    done, total = len(expected) - len(missing), len(expected)
    if progress:
        progress(done, total)
    for part, embedded, vectors in _embedded(embedder, _rows(missing, FILL_BATCH, form), present):
        with write() as snapshot:
            if embedded:
                snapshot.vectors.add(embedded, vectors)
            words = [(pk, text) for pk, text in part if pk not in lexical]
            if words:
                snapshot.bm25.add([pk for pk, _ in words], [text for _, text in words])
        done += len(part)
        if progress:
            progress(done, total)


def rebuild_index(progress=None) -> int:
    """Re-embed and re-tokenise every searchable chunk into fresh indexes of
    the serving store; returns how many passages it holds."""
    store, embedder = write_targets()[0]
    count = fill(store, embedder, progress, fresh=True)
    if store.self_maintaining:
        # Writers do not wait for a Milvus rebuild (there is no lock): what
        # they wrote to the generation it replaced is caught up here.
        count = fill(store, embedder)
    return count


MIN_RECALL = 0.9  # recall@10 of the vector index against exact search below which check_index warns
RECALL_SAMPLE = 100


def recall_against_exact(index, sample: int = RECALL_SAMPLE, k: int = 10, seed: int = 0) -> float | None:
    """recall@k of the index's own search against exact inner-product search,
    for `sample` of its stored vectors as queries (read through the index in
    batches, so memory stays flat at a million). None for an empty index."""
    ids = index.ids()
    if len(ids) == 0:
        return None
    rng = np.random.default_rng(seed)
    chosen = rng.choice(ids, size=min(sample, len(ids)), replace=False).tolist()
    stored = index.vectors(chosen)
    queries = np.vstack([stored[pk] for pk in chosen])
    best_scores = np.full((len(chosen), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(chosen), k), -1, dtype=np.int64)
    for batch_ids, vectors in index.batches():
        scores = np.concatenate([best_scores, queries @ vectors.T], axis=1)
        labels = np.concatenate([best_ids, np.broadcast_to(batch_ids, (len(chosen), len(batch_ids)))], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_scores, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(labels, top, 1)
    found = 0
    for row, vector in enumerate(queries):
        got = {int(i) for i in np.ravel(index.search(vector[None, :], k)[1]) if i >= 0}
        found += len(got & {int(i) for i in best_ids[row] if i >= 0})
    return round(found / float((best_ids >= 0).sum()), 4)


def check_index(repair: bool = False, recall: bool = False) -> dict:
    """Compare the indexes with the database: vectors (and BM25 entries) the
    searchable chunks lack, and ones no such chunk owns. With `repair`, embed
    what is missing and remove what is extra (in batches, each under the one
    writer lock). With `recall` (always for a GPU_CAGRA index on Milvus, an
    opt-in checked here), the vector index's recall@10 against exact search
    on a sample of its vectors (recall_against_exact)."""
    store = get_store()
    expected = set(Chunk.objects.filter(SEARCHABLE).values_list("pk", flat=True))
    vectors = set(store.current().ids().tolist())
    lexical = set(store.current_bm25().ids().tolist())
    report = {
        "chunks": len(expected),
        "vectors": len(vectors),
        "bm25": len(lexical),
        "missing_vectors": sorted(expected - vectors),
        "extra_vectors": sorted(vectors - expected),
        "missing_bm25": sorted(expected - lexical),
        "extra_bm25": sorted(lexical - expected),
        "repaired": False,
    }
    if recall or getattr(store, "index_type", "") == "GPU_CAGRA":
        report["recall@10"] = recall_against_exact(store.current())
        report["recall_ok"] = report["recall@10"] is None or report["recall@10"] >= MIN_RECALL
    problems = any(report[key] for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"))
    if repair and problems:
        fill(store, get_embedder(store.model))
        report["repaired"] = True
    return report


# -- index maintenance off the write path ------------------------------------
def maintenance_due(index) -> IndexParams | None:
    """The parameters to rebuild an index with, or None: a flat index past the
    exact-search limit becomes HNSW (an HNSW index that shrank well below it
    becomes flat again), and an HNSW index whose tombstones pass
    RAG_INDEX_COMPACT_SHARE of its slots is compacted."""
    wanted = index_params(index.ntotal)
    if index.kind == FLAT and wanted.kind == HNSW:
        return wanted
    if index.kind == HNSW and index.ntotal < settings.RAG_INDEX_EXACT_MAX // 2:
        return index_params(index.ntotal)
    if index.tombstones and index.tombstones > settings.RAG_INDEX_COMPACT_SHARE * index.slots:
        return index.params
    return None


def _plan_maintenance(store: IndexStore, index) -> None:
    """After a write: queue a background rebuild when one is due (at most one
    per store at a time; a marker file stands for the one queued or running).
    A store that keeps its own index (Milvus) needs none."""
    if store.self_maintaining or maintenance_due(index) is None:
        return
    marker = store.folder / ".rebuilding"
    try:
        if time.time() - marker.stat().st_mtime < 3600:
            return
    except FileNotFoundError:
        pass
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    from retrieval.tasks import maintain_index  # the tasks module imports this one

    transaction.on_commit(lambda: enqueue_safely(maintain_index, store.folder.name, store.model, store.form))


def maintain_index(folder: str | None = None, model: str | None = None, form: str | None = None) -> str:
    """Rebuild a store's vector index if maintenance_due says so: built from a
    snapshot WITHOUT the write lock (an HNSW graph of a million vectors takes
    minutes; ingestion goes on meanwhile), then, under the lock, brought up to
    date with the writes made since and swapped in. Returns what was done."""
    if folder is None:
        active = active_retriever()
        store = store_for(active["name"], active["model"], active["form"])
    else:  # queued by a write to that store (_plan_maintenance); queued before forms: the text form
        store = store_in(folder, model, form or passage_forms.TEXT)
    try:
        version, copy = store.snapshot_copy()
        params = maintenance_due(copy) if copy is not None else None
        if params is None:
            return "nothing to do"
        started = time.perf_counter()
        built = copy.rebuilt(params)
        built_ids = built.ids()
        log.info(
            "Built a %s index of %s vectors from version %s in %.1f s",
            params.kind,
            built.ntotal,
            version,
            time.perf_counter() - started,
        )
        with store.write() as snapshot:
            current = snapshot.vectors
            now_ids = current.ids()
            gone = np.setdiff1d(built_ids, now_ids, assume_unique=True)
            new = np.setdiff1d(now_ids, built_ids, assume_unique=True)
            built.remove(gone)
            if len(new):
                found = current.vectors(new.tolist())
                built.add(list(found), np.vstack(list(found.values())))
            snapshot.vectors = built
        return f"rebuilt as {params.kind} ({built.ntotal} vectors; {len(new)} added and {len(gone)} removed since the snapshot)"
    finally:
        (store.folder / ".rebuilding").unlink(missing_ok=True)
