"""In-process llama.cpp engine on a GGUF file (via the cyllama binding,
which ships prebuilt wheels: no compile step at install)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence

log = logging.getLogger(__name__)


class LlamaCppEngine:
    def __init__(self, model_path: str, context_tokens: int = 2048):
        if not model_path or not os.path.isfile(model_path):
            raise FileNotFoundError(f"Generator model not found: {model_path!r} (set RAG_GENERATOR_MODEL)")
        self.model_path = model_path
        self.context_tokens = context_tokens
        self._llm = None
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time

    @classmethod
    def from_settings(cls, settings) -> "LlamaCppEngine":
        return cls(settings.RAG_GENERATOR_MODEL, settings.RAG_GENERATOR_CONTEXT)

    def warm_up(self):
        if self._llm is None:
            from cyllama import LLM

            log.info("Loading generator %s", self.model_path)
            self._llm = LLM(self.model_path, temperature=0.0, n_ctx=self.context_tokens)
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self.warm_up().vocab.tokenize(text, False, True))

    def stream(self, messages, *, max_new_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        from cyllama import GenerationConfig

        config = GenerationConfig(
            max_tokens=max_new_tokens,
            temperature=0.0,
            n_ctx=self.context_tokens,
            stop_sequences=list(stop),
            repeat_penalty=1.0,
        )
        with self._lock:
            llm = self.warm_up()
            yield from llm.chat(messages, config=config, stream=True)
