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


def _use_context_params(threads: int, flash_attention: bool) -> None:
    """cyllama's LLM creates its llama.cpp contexts with 4 threads, llama.cpp's
    default micro-batch of 512 and no flash attention, and offers no setting
    for them. On 2 cores 4 threads halve decode speed (25 vs 65 tokens/s
    measured), and an 800-token prompt prefills 1.36x faster with flash
    attention and the whole prompt as one micro-batch (docs/BENCHMARKS.md).
    Its context parameters are swapped for ours."""
    import cyllama.api
    from cyllama.llama.llama_cpp import LlamaContextParams

    class ContextParams(LlamaContextParams):
        def __init__(self):
            super().__init__()
            self.n_threads = threads
            self.n_threads_batch = threads
            self.flash_attn_type = 1 if flash_attention else 0  # llama_flash_attn_type: 0 off, 1 on

        def __setattr__(self, name, value):
            super().__setattr__(name, value)
            if name == "n_batch":  # one micro-batch per prompt batch: prefill in one pass
                super().__setattr__("n_ubatch", value)

    cyllama.api.LlamaContextParams = ContextParams


class _PrefixCache:
    """Keeps the KV cache of the last prompt so the next one prefills only
    from where the two differ: the system prompt and instructions, which
    every RAG prompt shares, are computed once per process, not per question.

    cyllama's LLM clears the KV cache before each generation and prefills the
    whole prompt through `llama_batch_get_one(tokens, position)`. The engine's
    LLM skips that clearing (see _llm_class), and this object stands in for
    `llama_batch_get_one` in cyllama.api: for a prompt (position 0, more
    than one token) it drops the cached positions from the first differing
    token on and returns a batch of the rest only."""

    def __init__(self, original):
        self.original = original
        self._local = threading.local()  # the context of the generation running on this thread
        self._tokens: dict[int, list[int]] = {}  # id(context) -> the prompt its KV cache holds
        self.reused = 0  # prompt tokens the last prefill skipped (for tests and logs)

    def using(self, context, fresh: bool = False) -> None:
        """Called as a generation takes its context (a new one starts empty)."""
        self._local.context = context
        if fresh:
            self._tokens[id(context)] = []

    def tokens(self, context) -> list[int]:
        return self._tokens.get(id(context), [])

    def __call__(self, tokens, position=0):
        context = getattr(self._local, "context", None)
        tokens = list(tokens)
        if position != 0 or len(tokens) < 2 or context is None:
            return self.original(tokens, position)
        shared = 0
        for old, new in zip(self._tokens.get(id(context), []), tokens):
            if old != new:
                break
            shared += 1
        shared = min(shared, len(tokens) - 1)  # the last token is decoded again for fresh logits
        if not context.memory_seq_rm(0, shared, -1):
            context.kv_cache_clear()
            shared = 0
        self._tokens[id(context)], self.reused = tokens, shared
        return self.original(tokens[shared:], shared)

    def forget(self, context) -> None:
        """After a generation that did not finish cleanly: start from an empty cache."""
        if context is not None:
            self._tokens[id(context)] = []
            context.kv_cache_clear()


def _llm_class(cache: _PrefixCache):
    """cyllama's LLM, reusing its context without clearing the KV cache
    (the prefix cache decides what to keep)."""
    from cyllama import LLM

    class PrefixCachingLLM(LLM):
        def _ensure_context(self, prompt_length, config):
            required = prompt_length + config.max_tokens if config.n_ctx is None else config.n_ctx
            if self._ctx is not None and not self._closed and self._ctx_size >= required:
                cache.using(self._ctx)
                return self._ctx
            context = super()._ensure_context(prompt_length, config)
            cache.using(context, fresh=True)
            return context

    return PrefixCachingLLM


class LlamaCppEngine:
    def __init__(self, model_path: str, context_tokens: int = 2048, threads: int = 0, flash_attention: bool = True):
        if not model_path or not os.path.isfile(model_path):
            raise FileNotFoundError(f"Generator model not found: {model_path!r} (set RAG_GENERATOR_MODEL)")
        self.model_path = model_path
        self.context_tokens = context_tokens
        self.threads = threads or available_cores()
        self.flash_attention = flash_attention
        self._llm = None
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time

    @classmethod
    def from_settings(cls, settings) -> LlamaCppEngine:
        return cls(
            settings.RAG_GENERATOR_MODEL,
            settings.RAG_GENERATOR_CONTEXT,
            settings.RAG_GENERATOR_THREADS,
            settings.RAG_GENERATOR_FLASH_ATTENTION,
        )

    def warm_up(self):
        if self._llm is None:
            import cyllama.api

            _use_context_params(self.threads, self.flash_attention)
            if not isinstance(cyllama.api.llama_batch_get_one, _PrefixCache):
                cyllama.api.llama_batch_get_one = _PrefixCache(cyllama.api.llama_batch_get_one)
            self._cache = cyllama.api.llama_batch_get_one
            LLM = _llm_class(self._cache)
            log.info(
                "Loading generator %s (%s threads, flash attention %s)",
                self.model_path,
                self.threads,
                "on" if self.flash_attention else "off",
            )
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
            finished = False
            try:
                yield from llm.chat(messages, config=config, stream=True)
                finished = True
            finally:
                if not finished:  # an error, or a consumer that stopped early: the KV cache state is unknown
                    self._cache.forget(llm._ctx)
