"""Versioned index snapshots in a folder, shared by every process. Pure: no Django.

    manifest.json      {"version": N, "file": "index-000N.faiss", ...,
                        "bm25": "bm25-000M", "bm25_ntotal": n}
    index-000N.faiss   the vector snapshot (+ .json metadata)
    bm25-000M/         the BM25 snapshot (retrieval/bm25_index.py), M <= N
    .lock              writers hold an exclusive flock: one writer at a time

Writers load the newest snapshot under the lock, change it, write version N+1
and swap the manifest with os.replace. Readers stat the manifest on each use
and load a newer version when it appears, so no process needs a restart.

One lock and one manifest cover both indexes, so a version's vectors and BM25
terms describe the same chunks. A writer that does not touch BM25 (or changes
nothing in it) does not rewrite it: the new manifest points at the BM25
snapshot of an earlier version. A manifest without "bm25" (written before
BM25 existed) reads as an empty BM25 index until `rebuild_index`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import threading
from pathlib import Path

from retrieval.bm25_index import BM25Index
from retrieval.faiss_index import IndexParams, VectorIndex, _atomic_write

log = logging.getLogger(__name__)

KEEP_SNAPSHOTS = 2


class IndexStore:
    self_maintaining = False  # its vector index is rebuilt by retrieval/indexing.maintain_index

    def __init__(
        self,
        folder: str | Path,
        dimension: int,
        model: str,
        use_gpu: bool | str = "auto",
        params: IndexParams | None = None,
        form: str = "text",
    ):
        self.folder = Path(folder)
        self.form = form  # how its passages are read (retrieval/passage_forms.py)
        self.dimension = dimension
        self.model = model
        self.use_gpu = use_gpu
        self.params = params or IndexParams()  # of a new, empty index
        self._cached: tuple[int, VectorIndex] | None = None
        self._cached_bm25: tuple[str, BM25Index] | None = None  # keyed by snapshot folder: versions share one
        self._warned = False
        self._lock = threading.Lock()

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    def manifest(self) -> dict | None:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None

    def current(self) -> VectorIndex:
        """The newest snapshot (cached per version), or an empty index."""
        for _attempt in range(3):
            manifest = self.manifest()
            if manifest is None:
                return VectorIndex(self.dimension, self.model, self.use_gpu, self.params)
            with self._lock:
                if self._cached is not None and self._cached[0] == manifest["version"]:
                    return self._cached[1]
                try:
                    index = VectorIndex.load(self.folder / manifest["file"], self.use_gpu)
                except FileNotFoundError:  # pruned between reading the manifest and the file
                    continue
                self._cached = (manifest["version"], index)
                return index
        raise RuntimeError(f"could not load a consistent index snapshot from {self.folder}")

    def current_bm25(self) -> BM25Index:
        """The newest BM25 snapshot (cached per version), or an empty index."""
        for _attempt in range(3):
            manifest = self.manifest()
            if manifest is None or not manifest.get("bm25"):
                if manifest is not None and manifest.get("ntotal") and not self._warned:
                    self._warned = True
                    log.warning("The index in %s has no BM25 part yet; run `manage.py rebuild_index`", self.folder)
                return BM25Index()
            with self._lock:
                if self._cached_bm25 is not None and self._cached_bm25[0] == manifest["bm25"]:
                    return self._cached_bm25[1]
                try:
                    index = BM25Index.load(self.folder / manifest["bm25"])
                except FileNotFoundError:  # pruned between reading the manifest and the files
                    continue
                self._cached_bm25 = (manifest["bm25"], index)
                return index
        raise RuntimeError(f"could not load a consistent BM25 snapshot from {self.folder}")

    @contextlib.contextmanager
    def writer(self, fresh: bool = False):
        """Exclusive write access to the vectors alone (BM25 carries over, or
        starts empty with `fresh`); see write()."""
        with self.write(fresh) as snapshot:
            yield snapshot.vectors

    @contextlib.contextmanager
    def write(self, fresh: bool = False, params: IndexParams | None = None):
        """Exclusive write access: yields a WritableSnapshot whose `vectors`
        and `bm25` may be changed (or `vectors` replaced by another index);
        saves them as a new version on success. `fresh` starts from empty
        indexes, the vector index built with `params` (default: the store's)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                manifest = self.manifest()
                if fresh or manifest is None:
                    index = VectorIndex(self.dimension, self.model, use_gpu=False, params=params or self.params)
                else:
                    index = VectorIndex.load(self.folder / manifest["file"], use_gpu=False)
                previous_bm25 = None if fresh or manifest is None else manifest.get("bm25")
                snapshot = WritableSnapshot(index, self.folder / previous_bm25 if previous_bm25 else None)
                yield snapshot
                index = snapshot.vectors
                version = (manifest["version"] if manifest else 0) + 1
                name = f"index-{version:06d}.faiss"
                index.save(self.folder / name)
                new_manifest = {
                    "version": version,
                    "file": name,
                    "dimension": index.dimension,
                    "model": index.model,
                    "ntotal": index.ntotal,
                    "kind": index.kind,
                    "tombstones": index.tombstones,
                    "form": self.form,
                }
                bm25_name, bm25_ntotal = previous_bm25, manifest.get("bm25_ntotal", 0) if previous_bm25 else 0
                if snapshot.bm25_changed:
                    bm25_name, bm25_ntotal = f"bm25-{version:06d}", snapshot.bm25.ntotal
                    shutil.rmtree(
                        self.folder / bm25_name, ignore_errors=True
                    )  # left by a writer that crashed before its manifest
                    snapshot.bm25.save(self.folder / bm25_name)
                if bm25_name:
                    new_manifest.update(bm25=bm25_name, bm25_ntotal=bm25_ntotal)
                _atomic_write(self.manifest_path, json.dumps(new_manifest, indent=2).encode())
                self._prune(version, keep_bm25=bm25_name)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def snapshot_copy(self) -> tuple[int, VectorIndex | None]:
        """(version, a private CPU copy of that version's vectors) without the
        lock: for building a new index off the write path."""
        manifest = self.manifest()
        if manifest is None:
            return 0, None
        return manifest["version"], VectorIndex.load(self.folder / manifest["file"], use_gpu=False)

    def _prune(self, version: int, keep_bm25: str | None = None) -> None:
        for path in self.folder.glob("index-*.faiss"):
            try:
                number = int(path.stem.split("-")[1])
            except (IndexError, ValueError):
                continue
            if number <= version - KEEP_SNAPSHOTS:
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
        for path in self.folder.glob("bm25-*"):
            try:
                number = int(path.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if number <= version - KEEP_SNAPSHOTS and path.name != keep_bm25:
                shutil.rmtree(path, ignore_errors=True)
        for path in self.folder.glob(".bm25-*.tmp-*"):  # a crashed writer's (we hold the lock)
            shutil.rmtree(path, ignore_errors=True)


class WritableSnapshot:
    """What a writer changes: the vectors, and the BM25 corpus, which is read
    from disk only when the writer first touches it."""

    def __init__(self, vectors: VectorIndex, bm25_source: Path | None):
        self.vectors = vectors
        self._bm25_source = bm25_source
        self._bm25: BM25Index | None = None

    @property
    def bm25(self) -> BM25Index:
        if self._bm25 is None:
            self._bm25 = (
                BM25Index() if self._bm25_source is None else BM25Index.load(self._bm25_source, for_writing=True)
            )
        return self._bm25

    @property
    def bm25_changed(self) -> bool:
        return self._bm25 is not None and self._bm25.dirty


class IndexRegistry:
    """Which index serves searches, when retriever versions exist (issue #6).

        <root>/active.json   {"active": {"name": "base", "model": null},
                              "staging": null or {"name": "v2", "model": "/path"}}
        <root>/<name>/       one IndexStore folder per retriever version

    "model" is the embedder folder that made the vectors (null: the packaged
    default from settings). A version being built is "staging": writers add
    new documents to it as well as to the active one, so it is complete when
    it is switched in. Switching rewrites active.json atomically; readers see
    it on their next search, with no restart.
    """

    DEFAULT = {"active": {"name": "base", "model": None}, "staging": None}

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def path(self) -> Path:
        return self.root / "active.json"

    def state(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return json.loads(json.dumps(self.DEFAULT))

    @contextlib.contextmanager
    def changing(self):
        """Yields the state to change in place; written atomically on success."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".active.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self.state()
                yield state
                _atomic_write(self.path, json.dumps(state, indent=2).encode())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
