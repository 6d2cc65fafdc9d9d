"""Streamed answers: SSE over the API, the guardrail on windows of the
stream, a reader that leaves, follow-up questions."""

import json
import threading
import time

import pytest

from generation import services
from generation.models import GuardrailEvent, Message
from generation.streaming import buffered
from tests.conftest import api_client_for
from tests.engines import ScriptedEngine

pytestmark = pytest.mark.django_db


def parse_sse(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_it_streams_tokens_then_the_cited_answer(alice, handbook):
    response = api_client_for(alice).post(
        "/api/ask", {"question": "What is the annual fee of the Gold card?", "stream": True}, format="json"
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    events = parse_sse(b"".join(response.streaming_content))
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and names.count("token") >= 3
    streamed = "".join(data["text"] for name, data in events if name == "token")
    done = events[-1][1]
    assert done["citations"][0]["page"] == 2 and done["generated"] == streamed.strip()
    if done["kind"] == "generated":  # the streamed text with our verified [n] markers
        assert " ".join(done["answer"].replace(" [1]", "").split()) == " ".join(streamed.replace(" [1]", "").split())
    else:  # it did not verify: the quoted evidence replaced it, and the stream said so
        assert done["kind"] == "quoted" and "replace" in names
    assert "first_token" in done["timings"]
    assert Message.objects.filter(conversation_id=done["conversation_id"]).count() == 2


def test_a_stream_still_validates_its_input(alice):
    assert api_client_for(alice).post("/api/ask", {"question": " ", "stream": True}, format="json").status_code == 400


class ToxicEngine(ScriptedEngine):
    """Streams a polite start, then abuse: what the window guardrail must stop."""

    produced = []

    def pieces(self):
        words = (
            "The fee is 95 euros. "
            + "You are a fucking stupid idiot and a moron. " * 3
            + "More text follows here. " * 20
        ).split(" ")
        for word in words:
            ToxicEngine.produced.append(word)
            time.sleep(0.01)  # a model's pace
            yield word + " "


def test_the_guardrail_stops_a_toxic_continuation_mid_stream(alice, handbook, settings):
    settings.RAG_GENERATOR_ENGINE = "tests.generation.test_streaming.ToxicEngine"
    ToxicEngine.produced = []
    events = list(services.ask_stream("What is the annual fee of the Gold card?", user=alice))
    names = [e["event"] for e in events]
    assert "retract" in names and names[-1] == "done"
    result = events[-1]["result"]
    assert result.answer == services.REFUSAL_ANSWER and result.guardrail == {
        "intervened": True,
        "direction": "answer",
        "score": result.guardrail["score"],
        "question_score": result.guardrail["question_score"],
    }
    time.sleep(0.3)
    assert len(ToxicEngine.produced) < 60  # generation stopped well before the end (113 words)
    event = GuardrailEvent.objects.get()
    assert event.direction == "answer" and "idiot" in event.text and event.user == alice


def test_a_reader_that_leaves_stops_the_generation():
    produced, closed = [], threading.Event()

    def slow_stream():
        try:
            for i in range(1000):
                produced.append(i)
                time.sleep(0.01)
                yield str(i)
        finally:
            closed.set()

    stream = buffered(slow_stream)
    assert next(stream) == "0"
    stream.close()  # the client went away
    assert closed.wait(2.0)
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count < 100


def test_a_slow_reader_does_not_hold_the_producer():
    done = threading.Event()

    def fast_stream():
        yield from (str(i) for i in range(500))
        done.set()

    stream = buffered(fast_stream)
    next(stream)
    assert done.wait(2.0)  # everything was produced while the reader slept
    assert len(list(stream)) == 499


def test_errors_in_the_stream_reach_the_reader():
    def broken():
        yield "a"
        raise ConnectionError("server went away")

    stream = buffered(broken)
    assert next(stream) == "a"
    with pytest.raises(ConnectionError, match="went away"):
        next(stream)


def test_a_follow_up_question_is_made_standalone_for_retrieval(alice, handbook):
    first = services.ask("What is the annual fee of the Gold card?", user=alice)
    events = list(
        services.ask_stream("and what about the silver card?", user=alice, conversation_id=first.conversation_id)
    )
    assert events[0]["query"] == "What is the annual fee of the silver card?"
    result = events[-1]["result"]
    assert result.found and any("Silver" in p["text"] for p in result.passages)
