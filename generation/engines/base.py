from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

Messages = list[dict[str, str]]


class GeneratorUnavailable(RuntimeError):
    """The generator could not produce (or finish) an answer: a served engine
    that is unreachable, answers with an error, times out or goes away mid-answer."""


class GeneratorEngine(Protocol):
    """Streams an answer for chat messages, honouring stop sequences and a token budget."""

    context_tokens: int

    def stream(self, messages: Messages, *, max_new_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


def generate(engine: GeneratorEngine, messages: Messages, *, max_new_tokens: int, stop: Sequence[str] = ()) -> str:
    return "".join(engine.stream(messages, max_new_tokens=max_new_tokens, stop=stop))
