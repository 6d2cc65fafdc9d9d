"""Generator engines share one interface (`base.GeneratorEngine`); the one in
use is a dotted path in settings.RAG_GENERATOR_ENGINE, loaded once per process.
`auto` picks by configuration: a served engine when RAG_GENERATION_URL is set,
transformers for a model folder, llama.cpp for a GGUF file."""

import functools
import os

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from generation.engines.base import generate


@functools.lru_cache(maxsize=1)
def get_engine():
    engine_class = import_string(engine_path())
    return engine_class.from_settings(settings)


def engine_path() -> str:
    if settings.RAG_GENERATOR_ENGINE != "auto":
        return settings.RAG_GENERATOR_ENGINE
    if settings.RAG_GENERATION_URL:
        return "generation.engines.openai_compat.OpenAICompatibleEngine"
    if os.path.isdir(settings.RAG_GENERATOR_MODEL):
        return "generation.engines.transformers_engine.TransformersEngine"
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
