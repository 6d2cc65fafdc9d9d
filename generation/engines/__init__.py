"""Generator engines share one interface (`base.GeneratorEngine`); the one in
use is a dotted path in settings.RAG_GENERATOR_ENGINE, loaded once per process
and model. `auto` picks by configuration: a served engine when
RAG_GENERATION_URL is set, transformers for a model folder, llama.cpp for a
GGUF file (several answers decoded together when RAG_GENERATOR_SLOTS > 1). The model is the serving generator version's (generation/serving.py):
after a switch, the next answer loads the new one."""

import os
import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from generation import serving
from generation.engines.base import generate

_engines: dict = {}  # (engine class path, model) -> the engine: one at a time
_lock = threading.Lock()


class _ServingSettings:
    """Django's settings with RAG_GENERATOR_MODEL set to the serving model,
    for the engines' from_settings()."""

    def __init__(self, model: str):
        self.RAG_GENERATOR_MODEL = model

    def __getattr__(self, name):
        return getattr(settings, name)


def get_engine():
    model = serving.serving_model()
    key = (engine_path(model), model)
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = engine_for(model)
                # Answers being generated with the old engine finish with it; the next ones use this one.
                _engines.clear()
                _engines[key] = engine
    return engine


def engine_for(model: str):
    """A new engine of the configured kind for `model` (a GGUF file or a model folder)."""
    return import_string(engine_path(model)).from_settings(_ServingSettings(model))


get_engine.cache_clear = _engines.clear  # settings changed (and tests): the next call builds anew


def engine_path(model: str | None = None) -> str:
    if settings.RAG_GENERATOR_ENGINE != "auto":
        return settings.RAG_GENERATOR_ENGINE
    if settings.RAG_GENERATION_URL:
        return "generation.engines.openai_compat.OpenAICompatibleEngine"
    if os.path.isdir(model or settings.RAG_GENERATOR_MODEL):
        return "generation.engines.transformers_engine.TransformersEngine"
    if settings.RAG_GENERATOR_SLOTS > 1:
        return "generation.engines.llamacpp_batched.BatchedLlamaCppEngine"
    return "generation.engines.llamacpp.LlamaCppEngine"


def question_writer(*, max_new_tokens: int, stop=()):
    """generate(messages) -> text with the configured engine: what the
    retriever's fine-tuning writes its synthetic questions with
    (settings.RAG_FINETUNE_QUESTION_WRITER names this factory)."""
    engine = get_engine()
    return lambda messages: generate(engine, messages, max_new_tokens=max_new_tokens, stop=stop)


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith(("RAG_GENERATOR", "RAG_GENERATION")):
        get_engine.cache_clear()
