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


def count_tokens_many(texts: list[str]) -> list[int]:
    """count_tokens for many texts in one call (the Rust tokenizer batches them in parallel)."""
    encodings = _tokenizer(settings.RAG_EMBEDDER_PATH).encode_batch(list(texts), add_special_tokens=False)
    return [len(e.ids) for e in encodings]


count_tokens.many = count_tokens_many


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting == "RAG_EMBEDDER_PATH":
        _tokenizer.cache_clear()
