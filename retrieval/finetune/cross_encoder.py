"""The reranker: a cross-encoder initialised from the packaged MiniLM
weights (the embedder's own encoder, with a new one-logit head), trained on
the run's pairs and hard negatives, and judged on the held-out queries by
re-ordering the hybrid search's top candidates. Pure: no Django.

A cross-encoder reads the question and a passage together, so it sees which
words of the one answer which of the other; the bi-encoder compares two
vectors made apart. Each training triplet gives the question, its positive
and its mined hard negative; MultipleNegativesRankingLoss adds in-batch
negatives (the other questions' passages), so every step asks the model to
pick the right passage among several. Passages are read with their document
title and heading in front (retrieval/passage_forms.py), as search gives them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from core.env import hub_offline
from retrieval.finetune.train import TrainResult, fit

log = logging.getLogger(__name__)

LEARNING_RATE = 5e-5  # the head starts from nothing: a higher rate than the embedder's
WARMUP_RATIO = 0.1
WARMUP_STEPS = 10
MAX_TOKENS = 160  # question and passage together (passages are about 100 tokens)
IN_BATCH_NEGATIVES = 3
DECISION_FILE = "reranker.json"
MIN_DEPTH = 3  # the fewest candidates worth re-ordering within a latency budget


def train(
    base_model: str,
    triplets: Sequence[tuple[str, str, str]],
    output: str | Path,
    *,
    max_steps: int,
    max_minutes: float,
    batch_size: int,
    seed: int,
    learning_rate: float = LEARNING_RATE,
    warmup_steps: int | None = None,
    bf16: bool | None = None,
    layers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train a cross-encoder from the encoder in folder `base_model` on
    (query, positive, negative) texts and save it to `output`. Warm-up is
    short (WARMUP_STEPS at most: a time budget often stops a run long before
    max_steps); `bf16`: autocast in bfloat16 (default: on a CPU that runs it
    natively); `layers`: keep only the encoder's first layers (0: all), the
    way to the latency budget (docs/BENCHMARKS.md)."""
    if not triplets:
        raise ValueError("No training triplets")
    hub_offline()
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    from retrieval.embedding import cpu_has_fast_bf16

    set_seed(seed)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    model = CrossEncoder(base_model, num_labels=1, max_length=MAX_TOKENS, device=device, local_files_only=True)
    if layers:
        keep_layers(model.model, layers)
    dataset = Dataset.from_dict(
        {
            "query": [t[0] for t in triplets],
            "positive": [t[1] for t in triplets],
            "negative": [t[2] for t in triplets],
        }
    )
    return fit(
        model,
        dataset,
        output,
        what="Trained a reranker",
        args_class=CrossEncoderTrainingArguments,
        trainer_class=CrossEncoderTrainer,
        loss=MultipleNegativesRankingLoss(model, num_negatives=min(IN_BATCH_NEGATIVES, max(1, batch_size - 1))),
        max_steps=max_steps,
        max_minutes=max_minutes,
        batch_size=batch_size,
        seed=seed,
        learning_rate=learning_rate,
        warmup_steps=warmup_steps if warmup_steps is not None else min(WARMUP_STEPS, round(WARMUP_RATIO * max_steps)),
        cuda=cuda,
        bf16=cpu_has_fast_bf16() if bf16 is None else bf16,
        progress=progress,
    )


def keep_layers(model, layers: int) -> None:
    """Cut a BERT-style encoder to its first `layers` layers (its config too,
    so the saved model loads as cut)."""
    encoder = model.base_model.encoder
    if layers < len(encoder.layer):
        encoder.layer = encoder.layer[:layers]
        model.config.num_hidden_layers = layers


def rerank(
    score: Callable[[str, list[str]], np.ndarray],
    queries: Sequence[str],
    rankings: Sequence[Sequence[int]],
    passages: Mapping[int, str],
    depth: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """`score(query, texts)` of each query's first `depth` ranked ids (in
    that order), and the seconds each query's scoring took."""
    scores, seconds = [], []
    for done, (query, ranked) in enumerate(zip(queries, rankings), start=1):
        head = list(ranked[:depth])
        started = time.perf_counter()
        scores.append(np.asarray(score(query, [passages[pk] for pk in head]) if head else np.zeros(0)))
        seconds.append(time.perf_counter() - started)
        if progress and (done % 20 == 0 or done == len(queries)):
            progress(done, len(queries))
    return scores, seconds


def reorder(ranked: Sequence[int], scores: Sequence[float], depth: int) -> list[int]:
    """The first `depth` of `ranked` re-ordered by their `scores` (given for
    at least that many, in ranked order; ties keep the first order), the rest
    of the ranking after them unchanged."""
    head = list(ranked[:depth])
    order = sorted(range(len(head)), key=lambda i: (-float(scores[i]), i))
    return [head[i] for i in order] + list(ranked[depth:])


def within_budget(cost_ms: float | None, depth: int, budget_ms: float, least: int = MIN_DEPTH) -> int:
    """How many of the first candidates the reranker may score per query
    within `budget_ms`, from its p50 cost of scoring `depth` (taken as
    proportional to the number scored): at most `depth`, and 0 when fewer
    than `least` fit (re-ordering two is not worth a model). A budget of 0
    sets no limit."""
    if budget_ms <= 0 or not cost_ms or cost_ms <= budget_ms:
        return depth
    fits = int(depth * budget_ms / cost_ms)
    return fits if fits >= least else 0


def decide(methods: Mapping[str, Mapping[str, float]], hybrid: str, reranked: str, min_gain: float) -> dict:
    """Whether reranking beats the hybrid order it re-orders: MRR@10 (the
    first right passage is what an answer reads first) up by `min_gain`
    (relative) and recall@5 not down."""
    old, new = methods[hybrid], methods[reranked]
    gain = (new["mrr"] - old["mrr"]) / old["mrr"] if old["mrr"] > 0 else (1.0 if new["mrr"] > 0 else 0.0)
    return {
        "metric": "mrr",
        "hybrid": hybrid,
        "hybrid_mrr": old["mrr"],
        "reranked_mrr": new["mrr"],
        "gain": round(gain, 6),
        "min_gain": min_gain,
        "use": bool(new["mrr"] > old["mrr"] and gain >= min_gain and new["recall@5"] >= old["recall@5"]),
    }
