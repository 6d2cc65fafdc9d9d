"""Versioned index snapshots in a folder, shared by every process. Pure: no Django.

    manifest.json      {"version": N, "file": "index-000N.faiss", ...}
    index-000N.faiss   the snapshot (+ .json metadata)
    .lock              writers hold an exclusive flock: one writer at a time

Writers load the newest snapshot under the lock, change it, write version N+1
and swap the manifest with os.replace. Readers stat the manifest on each use
and load a newer version when it appears, so no process needs a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from pathlib import Path

from retrieval.faiss_index import VectorIndex, _atomic_write

KEEP_SNAPSHOTS = 2


class IndexStore:
    def __init__(self, folder: str | Path, dimension: int, model: str, use_gpu: bool | str = "auto"):
        self.folder = Path(folder)
        self.dimension = dimension
        self.model = model
        self.use_gpu = use_gpu
        self._cached: tuple[int, VectorIndex] | None = None
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
                return VectorIndex(self.dimension, self.model, self.use_gpu)
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

    @contextlib.contextmanager
    def writer(self, fresh: bool = False):
        """Exclusive write access: yields an index to change; saves it as a new version on success."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                manifest = self.manifest()
                if fresh or manifest is None:
                    index = VectorIndex(self.dimension, self.model, use_gpu=False)
                else:
                    index = VectorIndex.load(self.folder / manifest["file"], use_gpu=False)
                yield index
                version = (manifest["version"] if manifest else 0) + 1
                name = f"index-{version:06d}.faiss"
                index.save(self.folder / name)
                new_manifest = {"version": version, "file": name, "dimension": index.dimension, "model": index.model, "ntotal": index.ntotal}
                _atomic_write(self.manifest_path, json.dumps(new_manifest, indent=2).encode())
                self._prune(version)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _prune(self, version: int) -> None:
        for path in self.folder.glob("index-*.faiss"):
            try:
                number = int(path.stem.split("-")[1])
            except (IndexError, ValueError):
                continue
            if number <= version - KEEP_SNAPSHOTS:
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
