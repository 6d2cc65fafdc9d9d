"""Generator engines share one interface (`base.GeneratorEngine`); the one in
use is a dotted path in settings.RAG_GENERATOR_ENGINE, loaded once per process."""

import functools

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string


@functools.lru_cache(maxsize=1)
def get_engine():
    engine_class = import_string(settings.RAG_GENERATOR_ENGINE)
    return engine_class.from_settings(settings)


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith(("RAG_GENERATOR", "RAG_GENERATION")):
        get_engine.cache_clear()
