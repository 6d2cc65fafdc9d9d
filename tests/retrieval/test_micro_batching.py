"""The micro-batcher (retrieval/batching.py) and the embedder on it: concurrent
callers share one call and each gets its own results, in order; an error
reaches every caller of its call; the real embedder's vectors are the same
batched or alone."""

import threading
import time

import numpy as np
import pytest

from retrieval.batching import MicroBatcher


def concurrently(count, work):
    results, start = [None] * count, threading.Barrier(count)

    def run(i):
        start.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_callers_share_calls_and_each_gets_its_own_results():
    seen = []

    def run(items):
        seen.append(list(items))
        time.sleep(0.05)  # a forward pass
        return [item * 10 for item in items]

    batcher = MicroBatcher(run, window=0.02)
    results = concurrently(8, lambda i: batcher([i, i + 100]))
    assert results == [[i * 10, (i + 100) * 10] for i in range(8)]
    assert batcher.calls < 8 and batcher.widest > 1  # fewer calls than callers
    assert sorted(x for call in seen for x in call) == sorted(list(range(8)) + [i + 100 for i in range(8)])


def test_a_failed_call_fails_each_of_its_callers_and_the_next_call_works():
    calls = []

    def run(items):
        calls.append(items)
        if len(calls) == 1:
            raise ValueError("the model broke")
        return items

    batcher = MicroBatcher(run, window=0.05)
    outcomes = concurrently(3, lambda i: _outcome(batcher, i))
    assert all(o == "the model broke" for o in outcomes)
    assert batcher([7]) == [7]


def _outcome(batcher, i):
    try:
        return batcher([i])
    except ValueError as error:
        return str(error)


def test_a_call_that_returns_the_wrong_number_of_results_is_an_error():
    with pytest.raises(RuntimeError, match="results for"):
        MicroBatcher(lambda items: items[:1], window=0)([1, 2])


@pytest.mark.slow
def test_the_embedder_gives_each_concurrent_caller_its_own_vectors():
    from retrieval.embedding import get_embedder

    embedder = get_embedder()
    questions = [f"What is the fee number {i} for card {chr(65 + i)}?" for i in range(6)]
    alone = [embedder._encode([q], "encode_query")[0] for q in questions]
    together = concurrently(6, lambda i: embedder._encode([questions[i]], "encode_query")[0])
    for a, b in zip(alone, together):
        assert np.allclose(a, b, atol=2e-2)  # bf16 batches differ in the last bits
    assert float(alone[0] @ together[0]) > 0.999 and float(alone[0] @ together[1]) < 0.999
