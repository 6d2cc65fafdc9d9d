"""Micro-batching: concurrent callers' inputs run through one model call.

A caller hands its items over and waits. When no call is running, the
first caller waits a window of a few milliseconds for others, then runs one
call on everyone's items and hands each caller its own results; callers who
arrive while a call runs are served together by the next one. Under load a
forward pass serves several answers instead of each paying for its own; a
caller alone waits only the window. Pure: no model, no Django.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


class _Pending:
    __slots__ = ("items", "results", "error", "done")

    def __init__(self, items):
        self.items, self.results, self.error, self.done = list(items), None, None, False


class MicroBatcher:
    """`run(items) -> results` (one result per item, in order) shared by
    concurrent callers; `window` seconds gather callers before a call."""

    def __init__(self, run: Callable[[list], Sequence], window: float = 0.003):
        self._run, self.window = run, window
        self._changed = threading.Condition()
        self._queue: list[_Pending] = []
        self._running = False
        self.calls = 0  # model calls made (tests, logs)
        self.widest = 0  # the most callers one call served

    def __call__(self, items: Sequence) -> list:
        mine = _Pending(items)
        with self._changed:
            self._queue.append(mine)
            while self._running and not mine.done:
                self._changed.wait()
            if not mine.done:  # nothing running: this caller runs the next call
                self._running = True
                if self.window:
                    self._changed.wait(self.window)  # others append meanwhile (the lock is released)
                taken, self._queue = self._queue, []
        if not mine.done:
            self._serve(taken)
        if mine.error is not None:
            raise mine.error
        return mine.results

    def _serve(self, taken: list[_Pending]) -> None:
        try:
            everything = [item for pending in taken for item in pending.items]
            results = list(self._run(everything)) if everything else []
            if len(results) != len(everything):
                raise RuntimeError(f"the batched call gave {len(results)} results for {len(everything)} items")
            start = 0
            for pending in taken:
                pending.results = results[start : start + len(pending.items)]
                start += len(pending.items)
        except BaseException as error:  # every caller of this call hears of it
            for pending in taken:
                pending.error = error
        finally:
            with self._changed:
                for pending in taken:
                    pending.done = True
                self.calls += 1
                self.widest = max(self.widest, len(taken))
                self._running = False
                self._changed.notify_all()
