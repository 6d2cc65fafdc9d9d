"""In-process llama.cpp engine on a GGUF file (via the cyllama binding,
which ships prebuilt wheels: no compile step at install)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence

log = logging.getLogger(__name__)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _use_threads(threads: int) -> None:
    """cyllama's LLM creates its llama.cpp contexts with 4 threads and offers no
    setting; on 2 cores that halves decode speed (25 vs 65 tokens/s measured).
    Its context parameters are swapped for ones with our thread count."""
    import cyllama.api
    from cyllama.llama.llama_cpp import LlamaContextParams

    class ContextParams(LlamaContextParams):
        def __init__(self):
            super().__init__()
            self.n_threads = threads
            self.n_threads_batch = threads

    cyllama.api.LlamaContextParams = ContextParams


class LlamaCppEngine:
    def __init__(self, model_path: str, context_tokens: int = 2048, threads: int = 0):
        if not model_path or not os.path.isfile(model_path):
            raise FileNotFoundError(f"Generator model not found: {model_path!r} (set RAG_GENERATOR_MODEL)")
        self.model_path = model_path
        self.context_tokens = context_tokens
        self.threads = threads or available_cores()
        self._llm = None
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time

    @classmethod
    def from_settings(cls, settings) -> "LlamaCppEngine":
        return cls(settings.RAG_GENERATOR_MODEL, settings.RAG_GENERATOR_CONTEXT, settings.RAG_GENERATOR_THREADS)

    def warm_up(self):
        if self._llm is None:
            from cyllama import LLM

            _use_threads(self.threads)
            log.info("Loading generator %s (%s threads)", self.model_path, self.threads)
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
