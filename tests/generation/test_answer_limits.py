"""Answers are limited apart from searches: a rate of their own (the "ask"
throttle scope) and at most RAG_MAX_ANSWERS_PER_USER in flight per user,
counted in the cache; a slot is given back however an answer ends (done, the
client gone, an error) and expires if its process died."""

import os
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core.signals import request_finished
from django.db import close_old_connections
from rest_framework.throttling import ScopedRateThrottle, UserRateThrottle

from generation import services
from generation.answer_slots import AnswerSlot
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


@pytest.fixture
def short_leases(monkeypatch):
    """Leases of 1 s (whole seconds: Redis keeps no less), renewed every third."""
    from generation import answer_slots

    monkeypatch.setattr(answer_slots, "LEASE_SECONDS", 1)


def test_a_slot_whose_process_stopped_renewing_it_expires_with_its_lease(alice, settings, short_leases):
    from generation import answer_slots

    settings.RAG_MAX_ANSWERS_PER_USER = 1
    held = AnswerSlot.take(alice)  # never given back
    assert held is not None and AnswerSlot.take(alice) is None
    time.sleep(2.0)
    assert AnswerSlot.take(alice) is None  # its process is alive: the lease was renewed
    answer_slots.LEASES.drop(held.key)  # as if the process had died
    time.sleep(1.5)
    slot = AnswerSlot.take(alice)
    assert slot is not None
    slot.release()
    slot.release()  # twice is harmless
    assert AnswerSlot.take(alice) is not None


def test_a_slot_whose_answer_stopped_moving_expires(alice, settings, short_leases):
    settings.RAG_MAX_ANSWERS_PER_USER = 1
    settings.RAG_ANSWER_SLOT_SECONDS = 1
    assert AnswerSlot.take(alice) is not None  # stuck: never refreshed, never given back
    time.sleep(2.5)  # past RAG_ANSWER_SLOT_SECONDS, the lease is no longer renewed
    assert AnswerSlot.take(alice) is not None


@pytest.mark.skipif(
    not django_settings.CACHES["default"]["BACKEND"].endswith("RedisCache"),
    reason="needs Redis (REDIS_URL): two processes share the slots",
)
def test_a_server_killed_mid_answer_frees_its_users_slot_within_the_lease(alice, settings, tmp_path):
    # The audit's L6: a web server killed mid-answer left its user refused (429) for about 5 minutes.
    settings.RAG_MAX_ANSWERS_PER_USER = 1
    script = (
        "import os, sys, time, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'ragsite.settings'); django.setup()\n"
        "from django.conf import settings\n"
        f"settings.CACHES['default']['KEY_PREFIX'] = {settings.CACHES['default']['KEY_PREFIX']!r}\n"
        "from django.contrib.auth import get_user_model\n"
        "from generation import answer_slots\n"
        "answer_slots.LEASE_SECONDS = 2\n"
        f"slot = answer_slots.AnswerSlot.take(get_user_model()(pk={alice.pk}))\n"
        "print('held' if slot else 'refused', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "RAG_MAX_ANSWERS_PER_USER": "1", "RAG_DATA_DIR": str(settings.DATA_DIR)}
    server = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "held"
        time.sleep(2.5)
        assert AnswerSlot.take(alice) is None  # alive: its lease is renewed
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        killed = time.monotonic()
        while (slot := AnswerSlot.take(alice)) is None:
            assert time.monotonic() - killed < 4, "the dead process's slot was not freed within its lease"
            time.sleep(0.1)
        slot.release()
    finally:
        server.kill()
        server.wait(10)


def test_answers_have_a_rate_of_their_own(alice, scripted_answers, monkeypatch):
    rates = {**ScopedRateThrottle.THROTTLE_RATES, "ask": "2/min", "user": "4/min"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(search_module, "search", lambda *args, **kwargs: [])  # no index, no model
    assert [ask(alice).status_code for _ in range(3)] == [200, 200, 429]
    client = api_client_for(alice)
    # Searches are not counted against answers, nor answers against searches.
    assert [client.get("/api/search", {"q": "fee"}).status_code for _ in range(5)] == [200] * 4 + [429]


def test_a_stream_that_moves_keeps_its_slot_past_the_expiry(alice, scripted_answers, settings, short_leases):
    settings.RAG_MAX_ANSWERS_PER_USER = 1
    settings.RAG_ANSWER_SLOT_SECONDS = 1
    chunks = iter(ask(alice, stream=True).streaming_content)
    for _ in range(3):
        time.sleep(0.7)
        next(chunks)  # each event says the answer moved
    assert ask(alice).status_code == 429  # 2.1 s after the slot was taken
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
    from generation.answer_slots import IN_PROCESS

    assert IN_PROCESS.count == 1
