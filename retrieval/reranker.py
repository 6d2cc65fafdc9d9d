"""The trained reranker (a cross-encoder, retrieval/finetune/cross_encoder.py) of
the serving retriever version, loaded lazily once per process.

A fine-tuning run saves its reranker beside its embedder
(RAG_RETRIEVER_DIR/vN/reranker/) with reranker.json, the run's verdict: it
is used only when it beat the hybrid order on the run's held-out queries,
on as many first hits as its latency budget allowed (its verdict's depth).
So it is versioned with the retriever: switching to a version (or rolling
back) brings its reranker or none. RAG_RERANK=off never uses one.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from retrieval.artifacts import local_model
from retrieval.embedding import _FORWARD, _torch_threads, load_model, serving_model_path
from retrieval.finetune.cross_encoder import DECISION_FILE

log = logging.getLogger(__name__)

FOLDER = "reranker"


class CrossEncoderReranker:
    def __init__(self, path: str, device: str = "auto", batch_size: int = 32, dtype: str = "auto", depth: int = 10):
        if not os.path.isdir(path):
            raise FileNotFoundError(f"Reranker folder not found: {path!r}")
        self.path = path
        self.depth = depth  # the first hits it re-orders (within its run's latency budget)
        self.device = device
        self.batch_size = batch_size
        self.dtype_setting = dtype
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers.cross_encoder import CrossEncoder

                    self._model, _dtype = load_model(
                        "reranker",
                        self.device,
                        self.dtype_setting,
                        lambda device: CrossEncoder(self.path, device=device, local_files_only=True),
                        self.path,
                    )
        return self._model

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        """How well each text answers the query, in 0..1 (the model's sigmoid)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        model = self.warm_up()
        few = len(texts) <= 8
        with _FORWARD, _torch_threads(settings.RAG_EMBEDDER_SMALL_THREADS if few else 0):
            scores = model.predict(
                [(query, text) for text in texts],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(scores, dtype=np.float32).reshape(-1)


def folder_of(model_path: str) -> Path:
    """Where a retriever version's reranker lives: beside its embedder folder."""
    return Path(model_path).parent / FOLDER


def verdict(model_path: str) -> dict | None:
    """The run's verdict on the reranker beside this embedder (None: it has none)."""
    try:
        return json.loads((folder_of(model_path) / DECISION_FILE).read_text())
    except (OSError, ValueError):
        return None


def get_reranker(force: bool = False) -> CrossEncoderReranker | None:
    """The serving version's reranker when its run found that it helps (and
    RAG_RERANK is not off); None otherwise. `force`: one the run found no
    better too (an evaluation comparing with and without)."""
    if settings.RAG_RERANK == "off" and not force:
        return None
    model = serving_model_path()
    if os.path.normpath(model) == os.path.normpath(settings.RAG_EMBEDDER_PATH):
        return None  # the packaged embedder has no reranker
    model = local_model(model)  # a version stored for every host, cached here
    decided = verdict(model)
    if not decided or not (decided.get("use") or force or settings.RAG_RERANK == "on"):
        return None
    depth = min(settings.RAG_RERANK_DEPTH, int(decided.get("depth") or settings.RAG_RERANK_DEPTH))
    return _reranker(str(folder_of(model)), depth)


@functools.lru_cache(maxsize=2)
def _reranker(path: str, depth: int) -> CrossEncoderReranker:
    return CrossEncoderReranker(
        path, settings.RAG_EMBEDDER_DEVICE, settings.RAG_EMBED_BATCH_SIZE, settings.RAG_EMBEDDER_DTYPE, depth
    )


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith(("RAG_EMBED", "RAG_RERANK")):
        _reranker.cache_clear()
