"""The embedder: a sentence-transformers model from a local folder, loaded
lazily once per process (never at import), normalised vectors for cosine."""

from __future__ import annotations

import functools
import logging
import os
import threading

import numpy as np
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

log = logging.getLogger(__name__)


def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 matmuls run natively (about 2.5x fp32 here)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def choose_dtype(setting: str, device: str) -> str:
    """auto: bfloat16 on a CPU with native bf16, float16 on CUDA, else float32."""
    if setting != "auto":
        return setting
    if device.startswith("cuda"):
        return "float16"
    return "bfloat16" if cpu_has_fast_bf16() else "float32"


class SentenceTransformerEmbedder:
    def __init__(self, model_path: str, device: str = "auto", batch_size: int = 32, dtype: str = "auto"):
        if not model_path or not os.path.isdir(model_path):
            raise FileNotFoundError(f"Embedder folder not found: {model_path!r} (set RAG_EMBEDDER_PATH)")
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.dtype_setting = dtype
        self.dtype = None  # resolved on warm-up
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                    import torch
                    from sentence_transformers import SentenceTransformer

                    device = self.device
                    if device == "auto":
                        device = "cuda" if torch.cuda.is_available() else "cpu"
                    self.dtype = choose_dtype(self.dtype_setting, device)
                    log.info("Loading embedder %s on %s in %s (%s threads)", self.model_path, device, self.dtype, torch.get_num_threads())
                    model = SentenceTransformer(self.model_path, device=device, local_files_only=True)
                    if self.dtype != "float32":
                        model.to(getattr(torch, self.dtype))
                    self._model = model
        return self._model

    @property
    def dimension(self) -> int:
        model = self.warm_up()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        return int(self.warm_up().max_seq_length)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "encode_document")

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, "encode_query")

    def _encode(self, texts, method):
        model = self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encode = getattr(model, method, model.encode)
        with self._lock:  # one forward pass at a time per process
            vectors = encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        # Normalise in fp32: bf16 rounding would leave norms 0.3% off unit length.
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


@functools.lru_cache(maxsize=1)
def get_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        settings.RAG_EMBEDDER_PATH, settings.RAG_EMBEDDER_DEVICE, settings.RAG_EMBED_BATCH_SIZE, settings.RAG_EMBEDDER_DTYPE
    )


def model_identity() -> str:
    """What the index records about the model that made its vectors."""
    return os.path.normpath(settings.RAG_EMBEDDER_PATH)


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith("RAG_EMBED"):
        get_embedder.cache_clear()
