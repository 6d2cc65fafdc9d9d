"""The embedder: a sentence-transformers model from a local folder, loaded
lazily once per process (never at import), normalised vectors for cosine."""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import threading

import numpy as np
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from core.env import hub_offline
from retrieval.batching import MicroBatcher

log = logging.getLogger(__name__)

QUERY_CACHE = 1024  # query vectors remembered per embedder
_FORWARD = threading.Lock()  # one forward pass at a time per process (torch's thread count is process-wide)


@contextlib.contextmanager
def _torch_threads(count: int):
    """torch's intra-op threads set to `count` for the block (0: unchanged)."""
    if not count:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(min(count, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def load_model(what: str, device: str, dtype_setting: str, load, path: str):
    """A sentence-transformers model (`load(device)`) on `device` (auto: CUDA
    when torch sees it, else the CPU) in the dtype choose_dtype picks;
    returns (model, dtype)."""
    hub_offline()
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = choose_dtype(dtype_setting, device)
    log.info("Loading %s %s on %s in %s (%s threads)", what, path, device, dtype, torch.get_num_threads())
    model = load(device)
    if dtype != "float32":
        model.to(getattr(torch, dtype))
    return model, dtype


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
        self._queries: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._cache_lock = threading.Lock()
        self._batchers: dict[str, MicroBatcher] = {}

    def warm_up(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    self._model, self.dtype = load_model(
                        "embedder",
                        self.device,
                        self.dtype_setting,
                        lambda device: SentenceTransformer(self.model_path, device=device, local_files_only=True),
                        self.model_path,
                    )
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
        """Query vectors; the last QUERY_CACHE queries' vectors are remembered
        (a chat's follow-ups and a user's retries repeat them)."""
        texts = list(texts)
        with self._cache_lock:
            missing = [text for text in dict.fromkeys(texts) if text not in self._queries]
        if missing:
            fresh = self._queries_in_windows(missing)
            with self._cache_lock:
                for text, vector in zip(missing, fresh):
                    self._queries[text] = vector
                    if len(self._queries) > QUERY_CACHE:
                        self._queries.popitem(last=False)
        with self._cache_lock:
            found = [self._queries.get(text) for text in texts]
            for text in texts:
                if text in self._queries:
                    self._queries.move_to_end(text)
        if any(vector is None for vector in found):  # evicted meanwhile by other threads' queries
            return self._queries_in_windows(texts)
        return np.vstack(found) if found else np.zeros((0, self.dimension), dtype=np.float32)

    def _queries_in_windows(self, texts: list[str]) -> np.ndarray:
        """Query vectors of which a question longer than the encoder's window is
        not cut at the window: it is encoded in overlapping windows whose
        vectors are averaged. A question that fits is one window: itself."""
        tokenizer = self.warm_up().tokenizer
        size = max(8, self.max_tokens - 2)  # the window less [CLS] and [SEP]
        parts, owners = [], []
        for i, text in enumerate(texts):
            offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            for start, end in window_spans(offsets, size, len(text)):
                parts.append(text[start:end])
                owners.append(i)
        vectors = self._encode(parts, "encode_query")
        if len(parts) == len(texts):
            return vectors
        combined = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        np.add.at(combined, owners, vectors)
        return np.ascontiguousarray(combined / np.maximum(np.linalg.norm(combined, axis=1, keepdims=True), 1e-12))

    def _encode(self, texts, method):
        """Unit vectors of `texts` by the model's `method` (encode_query or
        encode_document). Concurrent callers' texts share one forward pass
        (retrieval/batching.py: requests arriving within
        RAG_EMBEDDER_BATCH_WINDOW_MS, or while a pass runs, are batched)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batcher = self._batchers.get(method)
        if batcher is None:
            with self._lock:
                batcher = self._batchers.setdefault(
                    method,
                    MicroBatcher(
                        lambda items: list(self._forward(items, method)), settings.RAG_EMBEDDER_BATCH_WINDOW_MS / 1000
                    ),
                )
        return np.vstack(batcher(list(texts)))

    def _forward(self, texts, method):
        model = self.warm_up()
        encode = getattr(model, method, model.encode)
        # A few short texts (queries, an answer's sentences) run on few torch
        # threads: with more, OpenMP's spinning threads lose badly to any other
        # busy process (measured: 1 s instead of 90 ms per query on 2 loaded cores).
        few = len(texts) <= 8 and sum(len(text) for text in texts) <= 2000
        with _FORWARD, _torch_threads(settings.RAG_EMBEDDER_SMALL_THREADS if few else 0):
            vectors = encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        # Normalise in fp32: bf16 rounding would leave norms 0.3% off unit length.
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


def get_embedder(path: str | None = None) -> SentenceTransformerEmbedder:
    """The embedder of a model folder; by default the one whose vectors serve
    searches (the packaged model, or the retriever version switched in)."""
    from retrieval.artifacts import local_model  # a version stored for every host, cached here

    return _embedder(os.path.normpath(local_model(path or serving_model_path())))


@functools.lru_cache(maxsize=4)
def _embedder(path: str) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        path, settings.RAG_EMBEDDER_DEVICE, settings.RAG_EMBED_BATCH_SIZE, settings.RAG_EMBEDDER_DTYPE
    )


get_embedder.cache_clear = _embedder.cache_clear


def window_spans(offsets, size: int, length: int, overlap: float = 0.25) -> list[tuple[int, int]]:
    """Character spans of windows of at most `size` tokens, a quarter
    overlapping the next, from a tokenizer's (start, end) offsets; the whole
    text (0, length) when it fits in one window."""
    if len(offsets) <= size:
        return [(0, length)]
    stride = max(1, int(size * (1 - overlap)))
    spans = []
    for first in range(0, len(offsets), stride):
        last = min(first + size, len(offsets)) - 1
        spans.append((offsets[first][0], offsets[last][1]))
        if last == len(offsets) - 1:
            break
    return spans


def serving_model_path() -> str:
    """The embedder folder of the active index (the registry of retrieval/stores.py)."""
    from retrieval.stores import registry  # it imports this module

    return registry().state()["active"].get("model") or settings.RAG_EMBEDDER_PATH


def model_identity(path: str | None = None) -> str:
    """What an index records about the model that made its vectors."""
    return os.path.normpath(path or serving_model_path())


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith("RAG_EMBED"):
        _embedder.cache_clear()
