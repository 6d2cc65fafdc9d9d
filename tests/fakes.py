"""Stand-ins for the real models, for tests that exercise the site's doors
(throughput, hostile input, the schema) rather than answer quality. They are
installed the way settings choose the real ones: the embedder through
retrieval.embedding's per-path cache, the classifier by its dotted path."""

import hashlib
import re

import numpy as np

DIMENSION = 384
_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """A bag of hashed words, normalised: texts that share words are close,
    as with a real embedder, at no cost (no model, no torch)."""

    dimension = DIMENSION
    max_tokens = 256
    batch_size = 32

    def __init__(self, model_path: str):
        self.model_path = model_path

    def warm_up(self):
        return self

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts) -> np.ndarray:
        vectors = np.zeros((len(texts), DIMENSION), np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()[:20_000]):
                vectors[row, int.from_bytes(hashlib.blake2s(word.encode()).digest()[:4], "little") % DIMENSION] += 1.0
            vectors[row, 0] += 1e-3  # no zero vector
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class CalmClassifier:
    """A guardrail that finds nothing toxic."""

    @classmethod
    def from_settings(cls, settings):
        return cls()

    def score(self, texts):
        return [0.0 for _ in texts]


def _hashing_embedders():
    embedders = {}
    return lambda path: embedders.setdefault(path, HashingEmbedder(path))


def install(monkeypatch, settings):
    """Serve this process's searches, indexing and guardrail with the fakes."""
    from retrieval import embedding

    monkeypatch.setattr(embedding, "_embedder", _hashing_embedders())
    settings.RAG_GUARDRAIL_BACKEND = "tests.fakes.CalmClassifier"


def install_in_server() -> None:
    """The same, for a server process of its own (tests/adversarial/served.py;
    the guardrail and the engine come by environment variables)."""
    from retrieval import embedding

    embedding._embedder = _hashing_embedders()
