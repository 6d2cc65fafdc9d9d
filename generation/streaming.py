"""Run a token stream in a background thread, so that a slow reader never
holds the engine (which serves one generation at a time) and a reader that
goes away stops the generation at the next token."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def buffered(produce: Callable[[], Iterator[str]], *, poll: float = 0.25) -> Iterator[str]:
    """Yield what `produce()` yields, produced in a daemon thread into an
    unbounded queue. Closing this generator asks the producer to stop."""
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run():
        stream = produce()
        try:
            for item in stream:
                if stop.is_set():
                    break
                items.put(item)
        except BaseException as error:  # handed to the reader, re-raised there
            items.put(_Failure(error))
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()  # releases the engine at once when the reader left
            items.put(_DONE)

    worker = threading.Thread(target=run, name="generation-stream", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = items.get(timeout=poll)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
