"""What reading one document may cost, checked as it is read. Pure: no Django.

A `Guard` goes with one document through parsing and chunking: the parsers
report pages and text as they read them, page by page or paragraph by
paragraph, the chunker reports every unit and passage, and each report may
stop the work with `LimitExceeded`, whose message a user can act on. Between
reports the guard calls its heartbeat about once a second (ingestion.services
stamps the claim there and stops a cancelled document).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class LimitExceeded(Exception):
    """A document over one of the limits; the message is shown to the user."""


@dataclass(frozen=True)
class Limits:
    """None: no limit. The setting names are quoted in the messages."""

    max_pages: int | None = None  # RAG_MAX_PAGES
    max_text_chars: int | None = None  # RAG_MAX_TEXT_CHARS
    max_chunks: int | None = None  # RAG_MAX_CHUNKS
    timeout: float | None = None  # RAG_PARSE_TIMEOUT, seconds for parsing and chunking together


_SPLIT = "; split it into smaller documents."


class Guard:
    def __init__(
        self,
        limits: Limits = Limits(),
        heartbeat: Callable[[], None] | None = None,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limits = limits
        self.heartbeat = heartbeat
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.next_beat = self.started + interval
        self.text_chars = 0
        self.chunks = 0

    def step(self) -> None:
        """At every page, paragraph or unit: the time limit, and the heartbeat when it is due."""
        now = self.clock()
        timeout = self.limits.timeout
        if timeout is not None and now - self.started > timeout:
            raise self.timed_out()
        if self.heartbeat is not None and now >= self.next_beat:
            self.heartbeat()
            self.next_beat = self.clock() + self.interval

    def timed_out(self) -> LimitExceeded:
        """The error of a document that passed the time limit (a step that ran
        out of time inside a library, such as OCR, raises it too)."""
        return LimitExceeded(
            f"Reading the document took longer than the limit of {self.limits.timeout:g} s (RAG_PARSE_TIMEOUT){_SPLIT}"
        )

    def remaining(self, default: float) -> float:
        """Seconds left of the time limit (`default` when there is none)."""
        if self.limits.timeout is None:
            return default
        return max(0.0, self.limits.timeout - (self.clock() - self.started))

    def pages(self, count: int) -> None:
        """The page count, known before the pages are read."""
        limit = self.limits.max_pages
        if limit is not None and count > limit:
            raise LimitExceeded(f"The document has {count:,} pages; the limit is {limit:,} (RAG_MAX_PAGES){_SPLIT}")

    def add_text(self, chars: int) -> None:
        """Characters of text read so far, added page by page or paragraph by paragraph."""
        self.text_chars += chars
        limit = self.limits.max_text_chars
        if limit is not None and self.text_chars > limit:
            raise LimitExceeded(
                f"The document's text is longer than the limit of {limit:,} characters (RAG_MAX_TEXT_CHARS){_SPLIT}"
            )
        self.step()

    def add_chunk(self) -> None:
        self.chunks += 1
        limit = self.limits.max_chunks
        if limit is not None and self.chunks > limit:
            raise LimitExceeded(
                f"The document makes more than the limit of {limit:,} passages (RAG_MAX_CHUNKS){_SPLIT}"
            )
        self.step()
