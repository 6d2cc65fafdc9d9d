"""Answers are limited apart from searches: a rate of their own (the "ask"
throttle scope) and at most RAG_MAX_ANSWERS_PER_USER in flight per user,
counted in the cache; a slot is given back however an answer ends (done, the
client gone, an error) and expires if its process died."""

import threading
import time
from types import SimpleNamespace

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle

from generation import services
from generation.throttling import AnswerSlot
from retrieval import search as search_module
from retrieval.search import SearchError
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

RESULT = SimpleNamespace(for_caller=lambda: {"answer": "Scripted.", "citations": []})


@pytest.fixture
def scripted_answers(monkeypatch, settings):
    """ask_stream replaced by a script of three events, no model: the limits
    are the view's. `gate`, when set, holds each answer before its `done`."""
    settings.RAG_MAX_ANSWERS_PER_USER = 2
    state = SimpleNamespace(gate=None, started=0, lock=threading.Lock())

    def ask_stream(question, *, user=None, conversation_id=None, collections=None, **_):
        if question == "bad":
            raise SearchError("Unknown collection: nope.")
        with state.lock:
            state.started += 1
        yield {"event": "start", "conversation_id": 1, "query": question}
        yield {"event": "token", "text": "Scripted."}
        if state.gate is not None:
            state.gate.wait(10)
        yield {"event": "done", "result": RESULT}

    monkeypatch.setattr(services, "ask_stream", ask_stream)
    return state


def ask(user, stream=False, question="What is the fee?"):
    return api_client_for(user).post("/api/ask", {"question": question, "stream": stream}, format="json")


def hang_up(response):
    """The client goes away: the server closes the response (without the
    request_finished handler that would close the test's database connection,
    as Django's test client does when a stream is read to its end)."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def test_a_third_streamed_answer_in_flight_is_refused(alice, bob, scripted_answers):
    first, second = ask(alice, stream=True), ask(alice, stream=True)  # started, not read to the end
    assert first.status_code == second.status_code == 200
    for stream in (True, False):
        refused = ask(alice, stream=stream)
        assert refused.status_code == 429
        assert "2 answers in progress" in refused.json()["detail"]
    assert ask(bob).status_code == 200  # per user
    b"".join(first.streaming_content)  # read to its end: the slot is given back
    assert ask(alice).status_code == 200
    hang_up(second)  # the client went away mid-answer
    assert ask(alice, stream=True).status_code == 200


def test_a_stream_closed_before_it_was_read_gives_its_slot_back(alice, scripted_answers):
    for _ in range(5):
        hang_up(ask(alice, stream=True))
    assert ask(alice).status_code == 200


def test_answers_that_end_or_fail_give_their_slots_back(alice, scripted_answers):
    assert [ask(alice).status_code for _ in range(4)] == [200] * 4
    assert [ask(alice, question="bad").status_code for _ in range(4)] == [400] * 4
    assert ask(alice, stream=True).status_code == 200


def test_slots_taken_at_once_by_many_threads_are_never_over_the_cap(settings):
    settings.RAG_MAX_ANSWERS_PER_USER = 2
    user, start, taken = SimpleNamespace(pk=f"threads-{time.time_ns()}"), threading.Barrier(8), []

    def one():
        start.wait(5)
        taken.append(AnswerSlot.take(user))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    held = [slot for slot in taken if slot is not None]
    assert len(taken) == 8 and len(held) == 2 and len({slot.key for slot in held}) == 2
    for slot in held:
        slot.release()
    assert AnswerSlot.take(user) is not None


def test_a_slot_left_by_a_dead_process_expires(alice, settings):
    settings.RAG_MAX_ANSWERS_PER_USER = 1
    settings.RAG_ANSWER_SLOT_SECONDS = 1
    assert AnswerSlot.take(alice) is not None  # never given back
    assert AnswerSlot.take(alice) is None
    time.sleep(1.2)
    slot = AnswerSlot.take(alice)
    assert slot is not None
    slot.release()
    slot.release()  # twice is harmless
    assert AnswerSlot.take(alice) is not None


def test_answers_have_a_rate_of_their_own(alice, scripted_answers, monkeypatch):
    rates = {**ScopedRateThrottle.THROTTLE_RATES, "ask": "2/min", "user": "4/min"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(search_module, "search", lambda *args, **kwargs: [])  # no index, no model
    assert [ask(alice).status_code for _ in range(3)] == [200, 200, 429]
    client = api_client_for(alice)
    # Searches are not counted against answers, nor answers against searches.
    assert [client.get("/api/search", {"q": "fee"}).status_code for _ in range(5)] == [200] * 4 + [429]


def test_a_stream_that_moves_keeps_its_slot_past_the_expiry(alice, scripted_answers, settings, monkeypatch):
    from generation import throttling

    settings.RAG_MAX_ANSWERS_PER_USER = 1
    settings.RAG_ANSWER_SLOT_SECONDS = 1
    monkeypatch.setattr(throttling, "REFRESH_EVERY", 0.0)
    chunks = iter(ask(alice, stream=True).streaming_content)
    for _ in range(2):
        time.sleep(0.7)
        next(chunks)  # each event pushes the expiry back
    assert ask(alice).status_code == 429  # 1.4 s after the slot was taken
    list(chunks)
    assert ask(alice).status_code == 200


def test_a_process_has_at_most_its_answers_in_flight_all_users_together(alice, bob, scripted_answers, settings):
    # Per-user caps alone let a few users hold every server thread (pages waited 5 s).
    settings.RAG_MAX_ANSWERS_PER_PROCESS = 2
    first, second = ask(alice, stream=True), ask(bob, stream=True)
    assert first.status_code == second.status_code == 200
    for user, stream in ((alice, True), (bob, False)):
        refused = ask(user, stream=stream)
        assert refused.status_code == 503 and "ask again in a moment" in refused.json()["detail"]
    assert scripted_answers.started == 2  # refused before anything was searched or stored
    b"".join(first.streaming_content)  # read to its end: the place is given back
    assert ask(bob).status_code == 200
    hang_up(second)  # the client went away
    assert ask(alice, stream=True).status_code == 200
    settings.RAG_MAX_ANSWERS_PER_USER = 1
    assert ask(alice).status_code == 429  # a user's cap still refuses, and gives its process place back
    from generation.throttling import IN_PROCESS

    assert IN_PROCESS.count == 1
