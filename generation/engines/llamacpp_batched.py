"""llama.cpp with continuous batching: one context decodes the answers of
several requests together, one sequence each (llama.cpp's batch API through
the cyllama binding), so that concurrent answers share each forward pass
instead of queueing behind one lock (issue #27).

A scheduler thread owns the context. A request's prompt is queued; when one
of the RAG_GENERATOR_SLOTS sequences is free it is taken, its prompt
prefilled (in chunks that leave room for the others' next tokens) and then
one token per step is decoded for every sequence in flight in the same
batch, each sampled greedily from its own logits and streamed to its
request as it comes. A sequence ends at end of generation, its token budget,
a stop sequence, or when its consumer stops reading; its slot keeps the KV
cache of what it held, so that the next prompt on that slot prefills only
from where the two differ (every RAG prompt shares the system prompt and
the instructions). Greedy decoding gives each request the tokens it would
get alone (tests/generation/test_batched_engine.py).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from generation.engines.base import GeneratorUnavailable
from generation.engines.llamacpp import available_cores

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(eq=False)
class _Request:
    tokens: list[int]
    max_new: int
    stop: tuple[str, ...]
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    slot: int = -1
    position: int = 0  # next position in its sequence
    prefilled: int = 0  # prompt tokens in the KV cache
    generated: int = 0
    last: int | None = None  # the token to decode next step
    held: str = ""  # text held back while it may begin a stop sequence

    @property
    def decoding(self) -> bool:
        return self.prefilled >= len(self.tokens)


class BatchedLlamaCppEngine:
    """The in-process llama.cpp engine with `slots` sequences decoded together."""

    def __init__(
        self,
        model_path: str,
        context_tokens: int = 2048,
        threads: int = 0,
        flash_attention: bool = True,
        slots: int = 4,
    ):
        import os

        if not model_path or not os.path.isfile(model_path):
            raise FileNotFoundError(f"Generator model not found: {model_path!r} (set RAG_GENERATOR_MODEL)")
        self.model_path = model_path
        self.context_tokens = context_tokens
        self.threads = threads or available_cores()
        self.flash_attention = flash_attention
        self.slots = max(1, slots)
        self._llm = None
        self._load_lock = threading.Lock()
        self._waiting: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self.steps = 0  # decode calls (tests and logs)
        self.widest = 0  # the most sequences one decode call served
        self.reused = 0  # prompt tokens the last admitted request did not prefill again

    @classmethod
    def from_settings(cls, settings) -> BatchedLlamaCppEngine:
        return cls(
            settings.RAG_GENERATOR_MODEL,
            settings.RAG_GENERATOR_CONTEXT,
            settings.RAG_GENERATOR_THREADS,
            settings.RAG_GENERATOR_FLASH_ATTENTION,
            settings.RAG_GENERATOR_SLOTS,
        )

    def warm_up(self):
        with self._load_lock:
            if self._llm is None:
                from cyllama import LLM
                from cyllama.llama.llama_cpp import (
                    LlamaBatch,
                    LlamaContext,
                    LlamaContextParams,
                    LlamaSampler,
                    LlamaSamplerChainParams,
                )

                log.info(
                    "Loading generator %s (%s threads, %s sequences decoded together)",
                    self.model_path,
                    self.threads,
                    self.slots,
                )
                llm = LLM(self.model_path, temperature=0.0, n_ctx=self.context_tokens)  # the model and its template
                params = LlamaContextParams()
                params.n_ctx = self.context_tokens * self.slots
                params.n_seq_max = self.slots
                params.n_batch = params.n_ubatch = self.context_tokens
                params.n_threads = params.n_threads_batch = self.threads
                params.flash_attn_type = 1 if self.flash_attention else 0
                self._context = LlamaContext(llm.model, params)
                self._batch = LlamaBatch(n_tokens=self.context_tokens, embd=0, n_seq_max=self.slots)
                self._sampler = LlamaSampler(LlamaSamplerChainParams())
                self._sampler.add_greedy()
                self._vocab = llm.model.get_vocab()
                self._cached: list[list[int]] = [[] for _ in range(self.slots)]  # what each slot's KV cache holds
                self._llm = llm
                threading.Thread(target=self._run, name="llamacpp-batch", daemon=True).start()
        return self._llm

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self._vocab.tokenize(text, False, True))

    def stream(self, messages, *, max_new_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        llm = self.warm_up()
        tokens = self._vocab.tokenize(llm._apply_template(messages), True, True)
        room = self.context_tokens - len(tokens)
        if room < 1:
            raise GeneratorUnavailable(
                f"The prompt ({len(tokens)} tokens) does not fit the generator's context ({self.context_tokens})."
            )
        request = _Request(list(tokens), min(max_new_tokens, room), tuple(s for s in stop if s))
        self._waiting.put(request)
        self._wake.set()
        try:
            while True:
                item = request.out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            request.cancelled.set()  # a consumer that stopped early: the scheduler frees its slot
            self._wake.set()

    # -- the scheduler thread --------------------------------------------------
    def _run(self) -> None:
        active: list[_Request] = []
        free = list(range(self.slots))
        while True:
            for request in [r for r in active if r.cancelled.is_set()]:
                self._finish(request, active, free)
            while free and not self._waiting.empty():
                request = self._waiting.get()
                if request.cancelled.is_set():
                    continue
                free.sort(key=lambda slot: -self._shared(slot, request.tokens))
                self._admit(request, free.pop(0))  # the slot whose cache shares the most of this prompt
                active.append(request)
            if not active:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                sampled = self._step(active)
            except Exception as error:  # noqa: BLE001 - every request in flight hears of it
                log.exception("llama.cpp batch decode failed")
                for request in list(active):
                    request.out.put(GeneratorUnavailable(f"The generator failed: {error}"))
                    self._cached[request.slot] = []
                    self._context.memory_seq_rm(request.slot, 0, -1)
                    self._finish(request, active, free, done=False)
                continue
            for request, index in sampled:
                self._emit(request, index, active, free)

    def _shared(self, slot: int, tokens: list[int]) -> int:
        """How many of `tokens` the slot's KV cache holds from the start."""
        shared = 0
        for old, new in zip(self._cached[slot], tokens):
            if old != new:
                break
            shared += 1
        return shared

    def _admit(self, request: _Request, slot: int) -> None:
        """Give the request a sequence, keeping the KV cache it shares with the slot's last one."""
        shared = min(
            self._shared(slot, request.tokens), len(request.tokens) - 1
        )  # the last prompt token is decoded again for its logits
        if not self._context.memory_seq_rm(slot, shared, -1):
            self._context.memory_seq_rm(slot, 0, -1)
            shared = 0
        request.slot, request.prefilled, request.position = slot, shared, shared
        self._cached[slot] = request.tokens[:shared]
        self.reused = shared

    def _step(self, active: list[_Request]) -> list[tuple[_Request, int]]:
        """One decode call: the next token of every decoding sequence, then
        as much prompt as the batch has room for. Returns the sequences with
        logits in it and their index in the batch."""
        batch = self._batch
        batch.clear()
        sampled, used = [], 0
        for request in active:
            if request.decoding and request.last is not None:
                batch.add(request.last, request.position, [request.slot], True)
                self._cached[request.slot].append(request.last)
                request.position += 1
                sampled.append((request, used))
                used += 1
        for request in active:
            if request.decoding or used >= self.context_tokens:
                continue
            chunk = request.tokens[request.prefilled : request.prefilled + self.context_tokens - used]
            for offset, token in enumerate(chunk):
                last = request.prefilled + offset == len(request.tokens) - 1
                batch.add(token, request.position, [request.slot], last)
                request.position += 1
                if last:
                    sampled.append((request, used))
                used += 1
            self._cached[request.slot].extend(chunk)
            request.prefilled += len(chunk)
        if used:
            self._context.decode(batch)
            self.steps += 1
            self.widest = max(self.widest, len(sampled))
        return sampled

    def _emit(self, request: _Request, index: int, active: list, free: list) -> None:
        token = self._sampler.sample(self._context, index)
        if self._vocab.is_eog(token):
            self._flush(request)
            return self._finish(request, active, free)
        try:
            piece = self._vocab.token_to_piece(token, special=True)
        except UnicodeDecodeError:
            piece = ""
        request.generated += 1
        text = request.held + piece
        cut = min((text.find(s) for s in request.stop if s in text), default=-1)
        if cut >= 0:
            if text[:cut]:
                request.out.put(text[:cut])
            request.held = ""
            return self._finish(request, active, free)
        keep = max((len(s) - 1 for s in request.stop), default=0)
        ready, request.held = (text[: len(text) - keep], text[len(text) - keep :]) if keep else (text, "")
        if ready:
            request.out.put(ready)
        if request.generated >= request.max_new:
            self._flush(request)
            return self._finish(request, active, free)
        request.last = token

    def _flush(self, request: _Request) -> None:
        if request.held:
            request.out.put(request.held)
            request.held = ""

    def _finish(self, request: _Request, active: list, free: list, done: bool = True) -> None:
        if done:
            request.out.put(_DONE)
        active.remove(request)
        free.append(request.slot)
