"""The real packaged embedder: the fast dtype path agrees with fp32."""

import numpy as np
import pytest
from django.conf import settings

from retrieval.embedding import SentenceTransformerEmbedder, choose_dtype, cpu_has_fast_bf16

pytestmark = pytest.mark.slow

TEXTS = [
    "The Gold card has an annual fee of 95 euros, which is waived in the first year.",
    "Expense claims must be filed within 30 days of returning from a trip, with receipts for every item above 25 euros.",
    "Call the 24-hour card line or freeze the card in the mobile app under Cards > Freeze. " * 8,
    "Kubernetes schedules pods onto nodes according to resource requests and affinity rules.",
]


def test_it_picks_a_dtype_for_the_hardware():
    assert choose_dtype("float32", "cpu") == "float32"
    assert choose_dtype("auto", "cuda:0") == "float16"
    assert choose_dtype("auto", "cpu") == ("bfloat16" if cpu_has_fast_bf16() else "float32")


def test_bf16_vectors_match_fp32_within_cosine_0_995():
    fp32 = SentenceTransformerEmbedder(settings.RAG_EMBEDDER_PATH, "cpu", dtype="float32")
    bf16 = SentenceTransformerEmbedder(settings.RAG_EMBEDDER_PATH, "cpu", dtype="bfloat16")
    a, b = fp32.embed_passages(TEXTS), bf16.embed_passages(TEXTS)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-3)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= 0.995, cosines
    # Ranking is preserved: each text is still nearest to itself.
    assert (np.argmax(b @ a.T, axis=1) == np.arange(len(TEXTS))).all()


def test_queries_use_the_query_side_and_rank_the_answer_first():
    embedder = SentenceTransformerEmbedder(settings.RAG_EMBEDDER_PATH, "cpu", dtype="auto")
    query = embedder.embed_queries(["How long do I have to file an expense claim?"])
    assert int(np.argmax(embedder.embed_passages(TEXTS) @ query[0])) == 1


def test_repeated_queries_are_answered_from_the_cache_with_the_same_vectors(monkeypatch):
    embedder = SentenceTransformerEmbedder(settings.RAG_EMBEDDER_PATH, "cpu", dtype="float32")
    first = embedder.embed_queries(["gold card fee", "silver card fee"])
    encoded = []
    real = embedder._encode
    monkeypatch.setattr(embedder, "_encode", lambda texts, method: encoded.append(list(texts)) or real(texts, method))
    again = embedder.embed_queries(["silver card fee", "platinum lounge", "gold card fee"])
    assert encoded == [["platinum lounge"]]  # only the new query went through the model
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[2], first[0])
    np.testing.assert_allclose(again[1], real(["platinum lounge"], "encode_query")[0], atol=1e-6)
