"""Token counting with the retriever's own tokenizer (the `tokenizers` library
only: no torch, no transformers), so chunks fit what the embedder reads."""

import functools
from pathlib import Path

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@functools.lru_cache(maxsize=4)
def _tokenizer(model_path: str):
    from tokenizers import Tokenizer

    path = Path(model_path) / "tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(f"No tokenizer.json in the embedder folder {model_path}")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()  # the shipped file pads to a fixed length
    tokenizer.no_truncation()
    return tokenizer


def count_tokens(text: str) -> int:
    """Tokens the embedder sees for `text`, without special tokens."""
    return len(_tokenizer(settings.RAG_EMBEDDER_PATH).encode(text, add_special_tokens=False).ids)


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting == "RAG_EMBEDDER_PATH":
        _tokenizer.cache_clear()
