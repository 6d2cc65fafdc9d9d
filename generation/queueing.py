"""The answer queue of one web process: at most RAG_ANSWER_CONCURRENCY
answers do model work at once (retrieval, evidence, the guardrail,
generation); the others wait in a fair order, and know their place.

Fair (start-time fair queueing over users): each answer is tagged, as it
arrives, one past the later of its user's previous answer and the last
answer started; the waiting answer with the lowest tag starts next, the
earliest among equals. A user's burst of five takes tags 1 to 5 while another
user asking meanwhile takes 2: one user's burst does not hold everyone else
back, and a user alone is served in order. A
waiting answer's position is the number of answers that start before it.

Answers beyond the process's RAG_MAX_ANSWERS_PER_PROCESS are refused before
they queue (generation/answer_slots.py, a 503 with Retry-After); one that has
waited RAG_ANSWER_MAX_WAIT seconds gives up with a clear message
(WaitedTooLong) instead of hanging. Searches and pages never queue here.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

from django.conf import settings

from core import metrics


class WaitedTooLong(Exception):
    """The answer waited RAG_ANSWER_MAX_WAIT seconds without starting."""

    def __init__(self, waited: float, retry_after: int):
        super().__init__(
            f"The server is busy answering other questions; yours waited {waited:.0f} s without starting. "
            f"Ask again in about {retry_after} s."
        )
        self.retry_after = retry_after


class Ticket:
    """One answer's place: waiting, then started, then done (`leave`)."""

    def __init__(self, board: AnswerQueue, user_key, number: int):
        self.board, self.user_key, self.number = board, user_key, number
        self.started = False
        self.tag = 0
        self.left = False
        self.arrived = time.monotonic()
        self.position_at_arrival = 0

    def position(self) -> int:
        """How many answers start before this one (0: it has started)."""
        return self.board.position(self)

    def wait(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for a start; the position then."""
        return self.board.wait(self, timeout)

    def leave(self) -> None:
        """Done (or gone): the place goes to the next in line. Idempotent."""
        self.board.leave(self)


class AnswerQueue:
    def __init__(self, capacity=None):
        self._capacity = capacity  # None: RAG_ANSWER_CONCURRENCY, read each time (tests change it)
        self._changed = threading.Condition()
        self._waiting: list[Ticket] = []
        self._running = 0
        self._virtual = 0  # the tag of the last answer started
        self._finish: dict = {}  # user -> the tag of their latest answer
        self._numbers = itertools.count()

    @property
    def capacity(self) -> int:
        return self._capacity or settings.RAG_ANSWER_CONCURRENCY

    def join(self, user_key) -> Ticket:
        """A ticket for an answer of `user_key`'s, started at once when there is room."""
        with self._changed:
            ticket = Ticket(self, user_key, next(self._numbers))
            ticket.tag = max(self._virtual, self._finish.get(user_key, 0)) + 1
            self._finish[user_key] = ticket.tag
            self._waiting.append(ticket)
            self._start_next()
            ticket.position_at_arrival = self._position(ticket)
            return ticket

    def wait(self, ticket: Ticket, timeout: float) -> int:
        with self._changed:
            if not ticket.started and not ticket.left:
                self._changed.wait(timeout)
            return self._position(ticket)

    def position(self, ticket: Ticket) -> int:
        with self._changed:
            return self._position(ticket)

    def leave(self, ticket: Ticket) -> None:
        with self._changed:
            if ticket.left:
                return
            ticket.left = True
            if ticket.started:
                self._running -= 1
            else:
                self._waiting.remove(ticket)
            self._start_next()
            self._changed.notify_all()

    def depth(self) -> tuple[int, int]:
        """(answers running, answers waiting)."""
        with self._changed:
            return self._running, len(self._waiting)

    # -- under the lock --------------------------------------------------------
    def _order(self) -> list[Ticket]:
        """The waiting tickets in the order they start."""
        return sorted(self._waiting, key=lambda t: (t.tag, t.number))

    def _position(self, ticket: Ticket) -> int:
        if ticket.started or ticket.left:
            return 0
        return self._order().index(ticket) + 1

    def _start_next(self) -> None:
        started = False
        while self._waiting and self._running < self.capacity:
            ticket = self._order()[0]
            self._waiting.remove(ticket)
            ticket.started = True
            metrics.QUEUE_WAIT.observe(time.monotonic() - ticket.arrived)
            self._running += 1
            self._virtual = max(self._virtual, ticket.tag)
            started = True
        if started:
            # A user whose latest tag is behind the clock is tagged from the clock: forget them.
            self._finish = {user: tag for user, tag in self._finish.items() if tag > self._virtual}
            self._changed.notify_all()


ANSWERS = AnswerQueue()


def waiting(ticket: Ticket, *, heartbeat: float = 1.0) -> Iterator[int]:
    """The ticket's position each time it changes (and every `heartbeat`
    seconds, so a stream shows it is alive) until the answer starts; raises
    WaitedTooLong past RAG_ANSWER_MAX_WAIT (the ticket is left)."""
    last = None
    while True:
        position = ticket.position()
        if position == 0:
            return
        waited = time.monotonic() - ticket.arrived
        if waited >= settings.RAG_ANSWER_MAX_WAIT:
            ticket.leave()
            metrics.QUEUE_GAVE_UP.inc()
            raise WaitedTooLong(waited, retry_after=retry_after(position))
        if position != last:
            last = position
            yield position
        ticket.wait(min(heartbeat, settings.RAG_ANSWER_MAX_WAIT - waited))


def retry_after(position: int) -> int:
    """A guess at when to ask again: a few seconds per answer ahead."""
    return max(5, min(120, 3 * position))
