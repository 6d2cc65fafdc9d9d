"""In-process Hugging Face transformers engine for a local model folder (any
causal LM with a chat template), streamed with TextIteratorStreamer.

On CUDA a decode step of a small model is bound by launching its kernels, not
by their arithmetic (measured on an H200 with the packaged 135M model: 88 ms
a step in eager mode, about 30 tokens/s). With `cuda_graphs` the engine
decodes through one static KV cache of `context_tokens`, which transformers
compiles and replays as CUDA graphs (about 210 tokens/s there); the compile
is done at warm-up, and the cache is reset, not reallocated, per answer."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence

from core.env import hub_offline
from retrieval.embedding import choose_dtype

log = logging.getLogger(__name__)


class TransformersEngine:
    def __init__(self, model_path: str, context_tokens: int = 2048, dtype: str = "auto", cuda_graphs: str = "auto"):
        if not model_path or not os.path.isdir(model_path):
            raise FileNotFoundError(f"Generator model folder not found: {model_path!r} (set RAG_GENERATOR_MODEL)")
        self.model_path = model_path
        self.context_tokens = context_tokens
        self.dtype_setting = dtype
        self.cuda_graphs = cuda_graphs  # auto (with CUDA) | on | off
        self._static_cache = None  # the one cache CUDA graphs replay on
        self._loaded = None
        self._lock = threading.Lock()  # one generation at a time per process

    @classmethod
    def from_settings(cls, settings) -> TransformersEngine:
        return cls(
            settings.RAG_GENERATOR_MODEL,
            settings.RAG_GENERATOR_CONTEXT,
            settings.RAG_EMBEDDER_DTYPE,
            getattr(settings, "RAG_GENERATOR_CUDA_GRAPHS", "auto"),
        )

    def warm_up(self):
        if self._loaded is None:
            hub_offline()
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = getattr(torch, choose_dtype(self.dtype_setting, device))
            log.info("Loading generator %s on %s in %s", self.model_path, device, dtype)
            tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
            model = (
                AutoModelForCausalLM.from_pretrained(self.model_path, local_files_only=True, dtype=dtype)
                .to(device)
                .eval()
            )
            if self._uses_graphs(device):
                from transformers import StaticCache

                self._static_cache = StaticCache(config=model.config, max_cache_len=self.context_tokens)
                started = time.monotonic()
                with torch.no_grad():  # compile and capture now, not in the first user's answer
                    warm = tokenizer("Warm-up.", return_tensors="pt").to(device)
                    model.generate(**warm, max_new_tokens=3, do_sample=False, past_key_values=self._cache())
                log.info("Generator decode compiled for CUDA graphs in %.0f s", time.monotonic() - started)
            self._loaded = (tokenizer, model)
        return self._loaded

    def _uses_graphs(self, device: str) -> bool:
        return self.cuda_graphs == "on" or (self.cuda_graphs == "auto" and device.startswith("cuda"))

    def _cache(self):
        """The static cache, emptied for the next answer (None: the dynamic cache)."""
        if self._static_cache is not None:
            self._static_cache.reset()
        return self._static_cache

    def count_tokens(self, text: str) -> int:
        tokenizer, _ = self.warm_up()
        return len(tokenizer(text, add_special_tokens=False).input_ids)

    def stream(self, messages, *, max_new_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        with self._lock:
            tokenizer, model = self.warm_up()
            prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
            streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
            kwargs = dict(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                streamer=streamer,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
            cache = self._cache()
            if cache is not None:
                kwargs["past_key_values"] = cache
            worker = threading.Thread(target=model.generate, kwargs=kwargs, daemon=True)
            worker.start()
            text, sent = "", 0
            try:
                for piece in streamer:
                    text += piece
                    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
                    if cut >= 0:
                        if cut > sent:
                            yield text[sent:cut]
                        return
                    # Hold back a tail that could be the start of a stop sequence.
                    hold = max((len(s) - 1 for s in stop), default=0)
                    safe = max(sent, len(text) - hold)
                    if safe > sent:
                        yield text[sent:safe]
                        sent = safe
                if len(text) > sent:
                    yield text[sent:]
            finally:
                worker.join()  # generate() ends within max_new_tokens
