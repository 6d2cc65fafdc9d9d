"""The answer queue (generation/queueing.py): capacity, round robin over
users, positions, leaving, and waits that end. Pure, no server."""

import threading
import time

import pytest

from generation.queueing import AnswerQueue, WaitedTooLong, retry_after, waiting


def test_answers_start_up_to_capacity_and_the_rest_wait_round_robin_over_users():
    board = AnswerQueue(capacity=1)
    running = board.join("alice")
    assert running.started and running.position() == 0
    alice_2, alice_3, bob = board.join("alice"), board.join("alice"), board.join("bob")
    # bob asked after alice's burst, and starts after her second, before her third.
    assert [alice_2.position(), bob.position(), alice_3.position()] == [1, 2, 3]
    assert (alice_2.position_at_arrival, alice_3.position_at_arrival, bob.position_at_arrival) == (1, 2, 2)
    assert board.depth() == (1, 3)

    running.leave()
    assert alice_2.started and [bob.position(), alice_3.position()] == [1, 2]
    alice_2.leave()
    assert bob.started and alice_3.position() == 1
    bob.leave()
    assert alice_3.started
    alice_3.leave()
    alice_3.leave()  # twice is harmless
    assert board.depth() == (0, 0)


def test_a_user_alone_is_served_in_order_and_a_later_user_is_not_starved():
    board = AnswerQueue(capacity=1)
    tickets = [board.join("alice") for _ in range(5)]
    carol = board.join("carol")
    assert [t.position() for t in tickets[1:]] == [1, 3, 4, 5] and carol.position() == 2
    for ticket in tickets[:2]:
        ticket.leave()
    assert carol.started


def test_a_waiting_answer_starts_when_a_place_frees(settings):
    settings.RAG_ANSWER_MAX_WAIT = 10
    board = AnswerQueue(capacity=1)
    running = board.join("alice")
    waiter = board.join("bob")
    threading.Timer(0.3, running.leave).start()
    started = time.monotonic()
    assert list(waiting(waiter, heartbeat=0.1)) == [1]
    assert waiter.started and time.monotonic() - started < 5


def test_a_wait_past_the_bound_gives_up_and_leaves_the_queue(settings):
    settings.RAG_ANSWER_MAX_WAIT = 1
    board = AnswerQueue(capacity=1)
    board.join("alice")
    waiter, behind = board.join("bob"), board.join("carol")
    with pytest.raises(WaitedTooLong, match="busy") as refused:
        list(waiting(waiter, heartbeat=0.2))
    assert refused.value.retry_after >= 5
    assert waiter.left and behind.position() == 1  # its place went to the next
    assert retry_after(0) == 5 and retry_after(100) == 120


def test_capacity_follows_the_setting(settings):
    settings.RAG_ANSWER_CONCURRENCY = 2
    board = AnswerQueue()
    first, second, third = board.join("a"), board.join("b"), board.join("c")
    assert first.started and second.started and third.position() == 1
