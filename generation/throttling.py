"""Answers in flight per user: at most RAG_MAX_ANSWERS_PER_USER at once.

An answer holds one of its user's numbered slots, each a key in Django's
cache (Redis when REDIS_URL is set, so every web process counts together),
taken with an atomic add and given back when the answer ends however it
ends: read to the end, the client gone (the response is closed), or an
error. A slot also expires RAG_ANSWER_SLOT_SECONDS after it was last
refreshed (a stream refreshes it as it goes), so a process that died
mid-answer cannot lock its user out for longer than that.

An answer also holds one of its process's RAG_MAX_ANSWERS_PER_PROCESS
places (all users together, counted in memory: the resource is this
process's server threads), so that answers leave threads for pages."""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings
from django.core.cache import cache

# A streamed answer refreshes its slot's expiry at most this often (seconds).
REFRESH_EVERY = 5.0


class ServerBusy(Exception):
    """This process has RAG_MAX_ANSWERS_PER_PROCESS answers in flight."""


class _ProcessAnswers:
    """How many answers this process has in flight."""

    def __init__(self):
        self.count, self._lock = 0, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.count >= settings.RAG_MAX_ANSWERS_PER_PROCESS:
                return False
            self.count += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.count -= 1


IN_PROCESS = _ProcessAnswers()


class AnswerSlot:
    def __init__(self, key: str, token: str):
        self.key, self.token = key, token
        self._refreshed = time.monotonic()

    @classmethod
    def take(cls, user) -> AnswerSlot | None:
        """A free slot of `user`'s, or None when all are held; ServerBusy
        when the process has all the answers in flight it may."""
        if not IN_PROCESS.take():
            raise ServerBusy()
        for number in range(settings.RAG_MAX_ANSWERS_PER_USER):
            key, token = f"answers:{user.pk}:{number}", uuid.uuid4().hex
            if cache.add(key, token, settings.RAG_ANSWER_SLOT_SECONDS):
                return cls(key, token)
        IN_PROCESS.give_back()
        return None

    def refresh(self) -> None:
        """Push the expiry back (a long answer that is still moving keeps its slot)."""
        now = time.monotonic()
        if self.key is not None and now - self._refreshed >= REFRESH_EVERY:
            self._refreshed = now
            cache.touch(self.key, settings.RAG_ANSWER_SLOT_SECONDS)

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing). Only while it is
        still this answer's: one that expired may have been taken by another
        (the check and the delete are two calls, so a slot that expires
        between them frees a slot early, never locks one)."""
        if self.key is None:
            return
        IN_PROCESS.give_back()
        if cache.get(self.key) == self.token:
            cache.delete(self.key)
        self.key = None


class HeldStream:
    """A streamed response's content that holds an answer slot: given back
    when the stream ends or the response is closed (Django closes it when the
    client goes away, whether or not the stream was started)."""

    def __init__(self, chunks, slot: AnswerSlot, *closers):
        self._chunks, self._slot, self._closers = chunks, slot, closers

    def __iter__(self):
        return self

    def __next__(self):
        try:
            chunk = next(self._chunks)
        except BaseException:
            self.close()
            raise
        self._slot.refresh()
        return chunk

    def close(self) -> None:
        try:
            for close in (getattr(self._chunks, "close", None), *self._closers):
                if close is not None:
                    close()
        finally:
            self._slot.release()
