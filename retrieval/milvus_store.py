"""The index on Milvus (issue #32): the same interface as the FAISS folder
store (retrieval/snapshots.py), for web processes and workers on several hosts.

One Milvus collection per retriever version and passage form holds, per
passage (chunk id as the primary key): its vector, our own BM25 tokens
(retrieval/bm25_index.tokenize, joined by spaces, so Milvus's BM25 function
scores exactly the terms the FAISS store's BM25 scores) and the ids of its
document and collection. Searches filter on the collection id inside the
engine (the collections a user may read, computed from the database per
search), so access never cuts a top k short; the app fuses the dense and
BM25 rankings itself (retrieval/ranking.py), as with FAISS.

Every store is an alias (`<prefix>_<version>_<form>`) over a physical
collection (`..._g<N>`): a rebuild fills a new generation while the old one
serves and moves the alias in one call. There is no writer lock: upserts and
deletes of different chunks from different workers commute, and each write
ends with a strongly consistent read that sees what it wrote (a document is
marked indexed only after that).

Milvus keeps its own index (HNSW by default; RAG_MILVUS_INDEX), so there is
no FAISS-style maintenance: `self_maintaining`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable

import numpy as np

from retrieval.bm25_index import tokenize

log = logging.getLogger(__name__)

MAX_TOPK = 16384  # Milvus's limit on one search's k
WRITE_BATCH = 1000  # rows per upsert call (a gRPC message stays well under its size limit)
READ_BATCH = 10000
MAX_TOKENS_CHARS = 65535  # the VARCHAR limit of the tokens field
INDEX_TYPES = ("HNSW", "FLAT", "GPU_CAGRA")

Owners = Callable[[list[int]], dict[int, tuple[int, int]]]  # chunk id -> (document id, collection id)

_CLIENTS: dict[tuple[int, str], object] = {}
_CLIENTS_LOCK = threading.Lock()


def client(uri: str, token: str = ""):
    """One MilvusClient per process and address (gRPC channels do not survive a fork)."""
    key = (os.getpid(), uri)
    with _CLIENTS_LOCK:
        found = _CLIENTS.get(key)
        if found is None:
            from pymilvus import MilvusClient

            found = _CLIENTS[key] = MilvusClient(uri=uri, token=token or "")
        return found


def collection_name(prefix: str, folder: str) -> str:
    """The alias of a store (`folder` as the FAISS store names its folder:
    "base", "v2-contextual"). Milvus names take letters, digits and
    underscores; any other character is written as _<hex>_, so that two
    names never meet."""
    escape = lambda text: re.sub(r"[^A-Za-z0-9]", lambda m: f"_{ord(m.group()):x}_", text)  # noqa: E731
    return f"{escape(prefix)}_{escape(folder)}"


class MilvusStore:
    self_maintaining = True

    def __init__(
        self,
        connect: Callable[[], object],
        name: str,
        dimension: int,
        model: str,
        form: str,
        owners: Owners,
        *,
        index_type: str = "HNSW",
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        analyzer: str = "standard",
    ):
        if index_type not in INDEX_TYPES:
            raise ValueError(f"Unknown Milvus index type {index_type!r}: {', '.join(INDEX_TYPES)}.")
        self._connect = connect
        self.name = name  # the alias searches and writes go through
        self.dimension = dimension
        self.model = model
        self.form = form
        self.owners = owners
        self.index_type = index_type
        self.hnsw = (hnsw_m, ef_construction, ef_search)
        self.analyzer = analyzer
        self.folder = None  # nothing on disk

    def __repr__(self) -> str:
        return f"MilvusStore({self.name})"

    @property
    def client(self):
        return self._connect()

    # -- what exists --------------------------------------------------------
    def physical(self) -> str | None:
        """The collection the alias points at now, or None."""
        if not self.exists():
            return None
        return self.client.describe_alias(self.name)["collection_name"]

    def exists(self) -> bool:
        """Whether the store has been written to (asked, not tried: pymilvus
        logs every failed call as an error)."""
        return self.name in self.client.list_aliases().get("aliases", [])

    def manifest(self) -> dict | None:
        """What the FAISS store's manifest tells callers: None before the first write."""
        collection = self.physical()
        if collection is None:
            return None
        return {"collection": collection, "ntotal": self.current().ntotal, "form": self.form, "model": self.model}

    def current(self) -> MilvusVectors:
        return MilvusVectors(self)

    def current_bm25(self) -> MilvusTerms:
        return MilvusTerms(self)

    def drop(self) -> None:
        """Remove the alias and every generation of this store."""
        client = self.client
        collection = self.physical()
        if collection is not None:
            client.drop_alias(self.name)
        for name in client.list_collections():
            if name == collection or re.fullmatch(re.escape(self.name) + r"_g\d+", name):
                client.drop_collection(name)

    # -- writes -------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, fresh: bool = False):
        with self.write(fresh) as snapshot:
            yield snapshot.vectors

    @contextlib.contextmanager
    def write(self, fresh: bool = False, params=None):
        """Yields a MilvusWrite whose `vectors` and `bm25` take adds and
        removes; applied on success. `fresh`: into a new generation that
        replaces the serving one in one alias move when complete (the old
        one serves meanwhile). `params` (FAISS index parameters) mean
        nothing here."""
        target = self._new_generation() if fresh else self._ensure()
        snapshot = MilvusWrite(self, target)
        try:
            yield snapshot
            snapshot.apply()
        except BaseException:
            if fresh:
                self.client.drop_collection(target)
            raise
        if fresh:
            self.client.flush(target)  # sealed and indexed before it serves
            self._point_alias(target)

    def flush(self) -> None:
        """Seal what was written, so that Milvus indexes it (growing data is
        searched by brute force until then)."""
        if self.exists():
            self.client.flush(self.name)

    def snapshot_copy(self):
        return 0, None  # Milvus maintains its own index

    def _ensure(self) -> str:
        collection = self.physical()
        if collection is not None:
            return collection
        collection = self._new_generation()
        try:
            self.client.create_alias(collection, self.name)
        except Exception as exc:  # another process made it first
            self.client.drop_collection(collection)
            if "exist" not in str(exc).lower():
                raise
            return self.physical()
        return collection

    def _point_alias(self, collection: str) -> None:
        client = self.client
        old = self.physical()
        if old is None:
            client.create_alias(collection, self.name)
        else:
            client.alter_alias(collection, self.name)
            client.drop_collection(old)
        log.info("Milvus store %s now serves collection %s", self.name, collection)

    def _new_generation(self) -> str:
        from pymilvus import DataType, Function, FunctionType

        client = self.client
        numbers = [
            int(found.group(1))
            for name in client.list_collections()
            if (found := re.fullmatch(re.escape(self.name) + r"_g(\d+)", name))
        ]
        collection = f"{self.name}_g{max(numbers, default=0) + 1}"
        schema = client.create_schema(auto_id=False, description=f"model={self.model} form={self.form}")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field("document_id", DataType.INT64)
        schema.add_field("collection_id", DataType.INT64)
        schema.add_field(
            "tokens",
            DataType.VARCHAR,
            max_length=MAX_TOKENS_CHARS,
            enable_analyzer=True,
            enable_match=True,
            analyzer_params={"tokenizer": self.analyzer},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["tokens"],
                output_field_names=["sparse"],
            )
        )
        index = client.prepare_index_params()
        m, ef_construction, _ef = self.hnsw
        if self.index_type == "HNSW":
            index.add_index(
                "vector", index_type="HNSW", metric_type="IP", params={"M": m, "efConstruction": ef_construction}
            )
        elif self.index_type == "GPU_CAGRA":
            index.add_index("vector", index_type="GPU_CAGRA", metric_type="IP", params={"graph_degree": 2 * m})
        else:
            index.add_index("vector", index_type="FLAT", metric_type="IP")
        # bm25s's defaults (k1 1.5, b 0.75), as the FAISS store's BM25 scores.
        index.add_index(
            "sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": 1.5, "bm25_b": 0.75}
        )
        index.add_index("collection_id", index_type="INVERTED")
        index.add_index("document_id", index_type="INVERTED")
        client.create_collection(collection, schema=schema, index_params=index, consistency_level="Strong")
        return collection

    # -- reads used by both views ----------------------------------------
    def _filter(self, collections=None, documents=None) -> str:
        parts = []
        if collections is not None:
            parts.append(f"collection_id in {_ints(collections)}")
        if documents is not None:
            parts.append(f"document_id in {_ints(documents)}")
        return " and ".join(parts)

    def _present(self, ids) -> set[int]:
        ids = [int(i) for i in ids]
        found = set()
        for start in range(0, len(ids), READ_BATCH):
            rows = self.client.get(self.name, ids=ids[start : start + READ_BATCH], output_fields=["id"])
            found.update(int(row["id"]) for row in rows)
        return found


def _ints(values) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


class MilvusVectors:
    """The dense side of a store, as search and indexing read a VectorIndex."""

    kind = "milvus"
    tombstones = 0

    def __init__(self, store: MilvusStore):
        self.store = store
        self._ntotal: int | None = None

    @property
    def filters_inside(self) -> bool:
        return True  # search() takes the access filter

    @property
    def ntotal(self) -> int:
        if self._ntotal is None:
            if not self.store.exists():
                self._ntotal = 0  # before the store's first write
            else:
                rows = self.store.client.query(self.store.name, filter="", output_fields=["count(*)"])
                self._ntotal = int(rows[0]["count(*)"])
        return self._ntotal

    def ids(self) -> np.ndarray:
        if self.ntotal == 0:
            return np.zeros(0, np.int64)
        found = []
        iterator = self.store.client.query_iterator(
            self.store.name, batch_size=READ_BATCH, filter="", output_fields=["id"]
        )
        try:
            while batch := iterator.next():
                found.extend(int(row["id"]) for row in batch)
        finally:
            iterator.close()
        return np.asarray(sorted(found), dtype=np.int64)

    def contains(self, ids) -> set[int]:
        return self.store._present(ids) if self.ntotal else set()

    def batches(self, size: int = READ_BATCH):
        """(ids, vectors) of every passage, a batch at a time (memory stays flat)."""
        if self.ntotal == 0:
            return
        iterator = self.store.client.query_iterator(
            self.store.name, batch_size=size, filter="", output_fields=["id", "vector"]
        )
        try:
            while batch := iterator.next():
                ids = np.asarray([row["id"] for row in batch], dtype=np.int64)
                yield ids, np.asarray([row["vector"] for row in batch], dtype=np.float32)
        finally:
            iterator.close()

    def vectors(self, ids) -> dict[int, np.ndarray]:
        ids = [int(i) for i in ids]
        if not ids or self.ntotal == 0:
            return {}
        found = {}
        for start in range(0, len(ids), READ_BATCH):
            for row in self.store.client.get(
                self.store.name, ids=ids[start : start + READ_BATCH], output_fields=["vector"]
            ):
                found[int(row["id"])] = np.asarray(row["vector"], dtype=np.float32)
        return {pk: found[pk] for pk in ids if pk in found}

    def search(self, queries, k: int, collections=None, documents=None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the best k by inner product (cosine: vectors are
        normalised), one row per query, -1 past the hits; only passages of
        `collections` (and `documents`) when given."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = min(int(k), MAX_TOPK)
        scores = np.full((len(queries), max(k, 0)), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), max(k, 0)), -1, dtype=np.int64)
        if k <= 0 or self.ntotal == 0 or (collections is not None and not collections):
            return scores, ids
        ef = max(self.store.hnsw[2], k)
        found = self.store.client.search(
            self.store.name,
            data=queries.tolist(),
            anns_field="vector",
            limit=k,
            filter=self.store._filter(collections, documents),
            search_params={"metric_type": "IP", "params": {"ef": ef}},
        )
        for row, hits in enumerate(found):
            for column, hit in enumerate(hits):
                scores[row, column], ids[row, column] = hit["distance"], hit["id"]
        return scores, ids


class MilvusTerms:
    """The BM25 side of a store, as search and the answer path read a BM25Index."""

    def __init__(self, store: MilvusStore):
        self.store = store
        self._vectors = MilvusVectors(store)

    @property
    def ntotal(self) -> int:
        return self._vectors.ntotal

    def ids(self) -> np.ndarray:
        return self._vectors.ids()

    def contains(self, ids) -> set[int]:
        return self._vectors.contains(ids)

    def search(self, query: str, k: int, collections=None, documents=None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the best k chunks sharing a term with the query."""
        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        words = tokenize([query])[0]
        k = min(int(k), MAX_TOPK)
        if not words or k <= 0 or self.ntotal == 0 or (collections is not None and not collections):
            return empty
        hits = self.store.client.search(
            self.store.name,
            data=[" ".join(words)],
            anns_field="sparse",
            limit=k,
            filter=self.store._filter(collections, documents),
            search_params={"metric_type": "BM25"},
        )[0]
        # milvus-lite gives BM25 scores as negative distances, a Milvus server as positive scores.
        return (
            np.asarray([abs(hit["distance"]) for hit in hits], dtype=np.float32),
            np.asarray([hit["id"] for hit in hits], dtype=np.int64),
        )

    def document_frequency(self, words: list[str]) -> dict[str, int]:
        """How many passages hold each word (tokenised as queries are)."""
        counts = {}
        for word, tokens in zip(words, tokenize(list(words))):
            if not tokens or self.ntotal == 0:
                counts[word] = 0
                continue
            rows = self.store.client.query(
                self.store.name, filter=f"TEXT_MATCH(tokens, '{tokens[0]}')", output_fields=["count(*)"]
            )
            counts[word] = int(rows[0]["count(*)"])
        return counts


class _Pending:
    """Adds and removes of one side (vectors or terms) of a write."""

    def __init__(self, store: MilvusStore, fresh: bool):
        self.store = store
        self.fresh = fresh
        self.added: dict[int, object] = {}
        self.removed: set[int] = set()
        self.dirty = False

    def remove(self, ids) -> int:
        ids = {int(i) for i in ids}
        for pk in ids:
            self.added.pop(pk, None)
        self.removed |= ids
        self.dirty = self.dirty or bool(ids)
        return 0 if self.fresh or not ids else len(self.store._present(ids))


class PendingVectors(_Pending):
    kind = "milvus"
    tombstones = 0

    def add(self, ids, vectors) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        for pk, vector in zip(ids, vectors):
            self.added[int(pk)] = vector
            self.removed.discard(int(pk))
        self.dirty = True

    @property
    def ntotal(self) -> int:
        return MilvusVectors(self.store).ntotal


class PendingTerms(_Pending):
    def add(self, ids, texts: list[str]) -> None:
        ids = [int(i) for i in ids]
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        for pk, words in zip(ids, tokenize(texts)):
            self.added[pk] = " ".join(words)[:MAX_TOKENS_CHARS]
            self.removed.discard(pk)
        self.dirty = True

    @property
    def ntotal(self) -> int:
        return MilvusVectors(self.store).ntotal


class MilvusWrite:
    """One write: the rows it adds (vector and tokens together; a side not
    given is read back from the row already stored) and the ids it removes,
    applied in batches, then read back with strong consistency."""

    def __init__(self, store: MilvusStore, collection: str):
        self.store = store
        self.collection = collection
        fresh = collection != store.physical()
        self.vectors = PendingVectors(store, fresh)
        self.bm25 = PendingTerms(store, fresh)

    def apply(self) -> None:
        client, name = self.store.client, self.collection
        gone = sorted((self.vectors.removed | self.bm25.removed) - set(self.vectors.added) - set(self.bm25.added))
        for start in range(0, len(gone), WRITE_BATCH):
            client.delete(name, ids=gone[start : start + WRITE_BATCH])
        ids = sorted(set(self.vectors.added) | set(self.bm25.added))
        owners = self.store.owners(ids) if ids else {}
        ids = [pk for pk in ids if pk in owners]  # a chunk deleted meanwhile is not written
        for start in range(0, len(ids), WRITE_BATCH):
            part = ids[start : start + WRITE_BATCH]
            stored = self._stored([pk for pk in part if pk not in self.vectors.added or pk not in self.bm25.added])
            rows = []
            for pk in part:
                vector = self.vectors.added.get(pk)
                tokens = self.bm25.added.get(pk)
                if vector is None or tokens is None:
                    if pk not in stored:
                        raise ValueError(f"Chunk {pk}: a new passage needs both its vector and its text")
                    vector = stored[pk]["vector"] if vector is None else vector
                    tokens = stored[pk]["tokens"] if tokens is None else tokens
                document, collection = owners[pk]
                rows.append(
                    {
                        "id": pk,
                        "vector": np.asarray(vector, dtype=np.float32).tolist(),
                        "document_id": document,
                        "collection_id": collection,
                        "tokens": tokens,
                    }
                )
            client.upsert(name, rows)
        self._verify(name, ids, gone)

    def _stored(self, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        rows = self.store.client.get(self.collection, ids=ids, output_fields=["vector", "tokens"])
        return {int(row["id"]): row for row in rows}

    def _verify(self, name: str, written: list[int], gone: list[int]) -> None:
        """A strongly consistent read must see every row written and none removed."""
        client = self.store.client
        for start in range(0, len(written), READ_BATCH):
            part = written[start : start + READ_BATCH]
            seen = {int(r["id"]) for r in client.get(name, ids=part, output_fields=["id"], consistency_level="Strong")}
            if len(seen) != len(part):
                raise RuntimeError(
                    f"Milvus {name}: {len(part) - len(seen)} written passages not visible after the write"
                )
        for start in range(0, len(gone), READ_BATCH):
            part = gone[start : start + READ_BATCH]
            if client.get(name, ids=part, output_fields=["id"], consistency_level="Strong"):
                raise RuntimeError(f"Milvus {name}: removed passages still visible after the write")
