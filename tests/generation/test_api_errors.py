"""A failing generator reaches API users as a readable message (503, or an
SSE `error` event once the stream has started); its detail (the server's
address, exception classes) goes to the log only."""

import json
import logging

import pytest

from generation.api import FAILED, ServiceUnavailable
from generation.engines.base import GeneratorUnavailable
from tests.conftest import api_client_for
from tests.engines import ScriptedEngine

QUESTION = "What is the annual fee of the Gold card?"
INTERNAL = "http://10.9.8.7:8000"


class UnreachableEngine(ScriptedEngine):
    def pieces(self):
        raise GeneratorUnavailable(f"Generation server unreachable at {INTERNAL}: [Errno 111] Connection refused.")


class GoneMidAnswerEngine(ScriptedEngine):
    def pieces(self):
        yield "The Gold card"
        raise GeneratorUnavailable(f"Generation server at {INTERNAL} went away mid-answer: ConnectionResetError(104).")


class BrokenEngine(ScriptedEngine):
    def pieces(self):
        yield "The Gold card"
        raise KeyError("choices")  # a bug, not an outage


def use(settings, engine):
    settings.RAG_GENERATOR_ENGINE = f"{__name__}.{engine.__name__}"


def sse_events(response) -> list[tuple[str, dict]]:
    text = b"".join(response.streaming_content).decode()
    events = []
    for block in filter(None, text.split("\n\n")):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_an_unreachable_generator_is_a_503_without_its_address(settings, alice, handbook, caplog):
    use(settings, UnreachableEngine)
    with caplog.at_level(logging.WARNING, logger="generation.api"):
        response = api_client_for(alice).post("/api/ask", {"question": QUESTION}, format="json")
    assert response.status_code == 503
    assert response.json() == {"detail": ServiceUnavailable.default_detail}
    assert INTERNAL in caplog.text  # for the operator


@pytest.mark.parametrize(
    "engine, message", [(GoneMidAnswerEngine, ServiceUnavailable.default_detail), (BrokenEngine, FAILED)]
)
def test_a_failure_mid_stream_is_an_error_event_for_the_reader(settings, alice, handbook, engine, message):
    use(settings, engine)
    response = api_client_for(alice).post("/api/ask", {"question": QUESTION, "stream": True}, format="json")
    assert response.status_code == 200
    events = sse_events(response)
    assert events[0][0] == "start" and events[-1] == ("error", {"detail": message})
    assert INTERNAL not in str(events) and "Error" not in str(events[-1])
