"""Answers in flight per user: at most RAG_MAX_ANSWERS_PER_USER at once.

An answer holds one of its user's numbered slots, each a key in Django's
cache (Redis when REDIS_URL is set, so every web process counts together),
taken with an atomic add and given back when the answer ends however it
ends: read to the end, the client gone (the response is closed), or an
error. A slot's key is a lease of LEASE_SECONDS that its process renews
(one thread, every third of the lease) while the answer keeps moving, so a
process killed mid-answer (a restart, a crash) frees its users' slots within
LEASE_SECONDS, and an answer that has not moved for RAG_ANSWER_SLOT_SECONDS
(stuck) loses its slot too.

An answer also holds one of its process's RAG_MAX_ANSWERS_PER_PROCESS
places (all users together, counted in memory: the resource is this
process's server threads), so that answers leave threads for pages."""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

# Seconds a slot's key lives unless its process renews it (issue #26, L6: a
# server killed mid-answer refused its users for the old 300 s expiry).
LEASE_SECONDS = 30.0


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


class _Leases:
    """This process's held slots, their leases renewed by one daemon thread
    (started with the first slot) every third of LEASE_SECONDS, for as long
    as their answers moved within RAG_ANSWER_SLOT_SECONDS."""

    def __init__(self):
        self.held: dict[str, AnswerSlot] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, slot: AnswerSlot) -> None:
        with self._lock:
            self.held[slot.key] = slot
            if self._thread is None or not self._thread.is_alive():  # none yet, or not in a forked child
                self._thread = threading.Thread(target=self._run, name="answer-slot-leases", daemon=True)
                self._thread.start()
        self._wake.set()  # renews now and waits a third of the lease from here

    def drop(self, key: str) -> None:
        with self._lock:
            self.held.pop(key, None)

    def renew(self) -> None:
        now = time.monotonic()
        with self._lock:
            moving = [slot.key for slot in self.held.values() if now - slot.moved < settings.RAG_ANSWER_SLOT_SECONDS]
        for key in moving:
            cache.touch(key, LEASE_SECONDS)

    def _run(self) -> None:
        while True:
            self._wake.wait(LEASE_SECONDS / 3)
            self._wake.clear()
            try:
                self.renew()
            except Exception:  # the cache away for a moment: the next round renews
                log.warning("Could not renew the answer slots' leases", exc_info=True)


LEASES = _Leases()


class AnswerSlot:
    def __init__(self, key: str, token: str):
        self.key, self.token = key, token
        self.moved = time.monotonic()

    @classmethod
    def take(cls, user) -> AnswerSlot | None:
        """A free slot of `user`'s, or None when all are held; ServerBusy
        when the process has all the answers in flight it may."""
        if not IN_PROCESS.take():
            raise ServerBusy()
        for number in range(settings.RAG_MAX_ANSWERS_PER_USER):
            key, token = f"answers:{user.pk}:{number}", uuid.uuid4().hex
            if cache.add(key, token, LEASE_SECONDS):
                slot = cls(key, token)
                LEASES.hold(slot)
                return slot
        IN_PROCESS.give_back()
        return None

    def refresh(self) -> None:
        """The answer moved: its lease goes on being renewed."""
        self.moved = time.monotonic()

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing). Only while it is
        still this answer's: one that expired may have been taken by another
        (the check and the delete are two calls, so a slot that expires
        between them frees a slot early, never locks one)."""
        if self.key is None:
            return
        IN_PROCESS.give_back()
        LEASES.drop(self.key)
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
