"""The served engine (OpenAI-compatible chat API with streaming) against small
scripted HTTP servers on 127.0.0.1 in threads.

These servers script the wire format that trtllm-serve, llama.cpp's server
and vLLM send, including the failures a real server rarely shows on demand
(timeouts, a server gone mid-answer). The run against a real model server,
llama.cpp's own (llama-cpp-python[server]) on the packaged GGUF, is
tests/generation/test_llamacpp_server.py.
"""

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generation.engines.base import GeneratorUnavailable, generate
from generation.engines.openai_compat import OpenAICompatibleEngine
from tests.conftest import api_client_for

SERVED = "generation.engines.openai_compat.OpenAICompatibleEngine"
MESSAGES = [{"role": "user", "content": "What is the annual fee of the Gold card?"}]


def delta(content=None, finish_reason=None):
    return {
        "choices": [
            {"index": 0, "delta": {"content": content} if content is not None else {}, "finish_reason": finish_reason}
        ]
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        route = self.server.routes.get(self.path)
        if route is None:
            return self.reply_json(404, {"error": {"code": 404, "message": "File Not Found"}})
        route(self, body)

    def reply_json(self, status, data):
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def start_events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def event(self, data):
        text = data if isinstance(data, str) else json.dumps(data)
        raw = f"data: {text}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()

    def end_events(self):
        self.event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, *args):
        pass


class ScriptedServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 whose answers each test scripts per path."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes, self.requests = {}, []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        pass  # a client that hangs up early (as the engine does on errors) is expected here


@pytest.fixture
def server():
    srv = ScriptedServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def streaming(words):
    def route(handler, body):
        handler.start_events()
        handler.event(delta(""))  # role-only first delta, as llama.cpp and vLLM send
        for word in words:
            handler.event(delta(word))
        handler.event(delta(finish_reason="stop"))
        handler.end_events()

    return route


def engine_for(url, **kwargs):
    return OpenAICompatibleEngine(url, **{"connect_timeout": 2.0, "read_timeout": 5.0, **kwargs})


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_streams_deltas_in_order(server):
    server.routes["/v1/chat/completions"] = streaming(["The", " Gold", " card", " costs 95 euros."])
    engine = engine_for(server.url, model="smollm2", api_key="s3cret")

    chunks = list(engine.stream(MESSAGES, max_new_tokens=40, stop=["\nQuestion:"]))

    assert chunks == ["The", " Gold", " card", " costs 95 euros."]
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["body"] == {
        "messages": MESSAGES,
        "stream": True,
        "temperature": 0,
        "max_tokens": 40,
        "stop": ["\nQuestion:"],
        "model": "smollm2",
    }


def test_it_yields_each_delta_as_it_arrives(server):
    first_seen = threading.Event()

    def route(handler, body):
        handler.start_events()
        handler.event(delta("first"))
        first_seen.wait(5)  # the rest only once the client has the first chunk
        handler.event(delta(" second", "stop"))
        handler.end_events()

    server.routes["/v1/chat/completions"] = route
    chunks = []
    for chunk in engine_for(server.url).stream(MESSAGES, max_new_tokens=8):
        chunks.append(chunk)
        first_seen.set()
    assert chunks == ["first", " second"]


def test_it_omits_model_and_key_when_unset(server):
    server.routes["/v1/chat/completions"] = streaming(["ok"])
    assert generate(engine_for(server.url + "/v1/"), MESSAGES, max_new_tokens=4) == "ok"
    request = server.requests[0]
    assert "model" not in request["body"] and "Authorization" not in request["headers"]
    assert request["path"] == "/v1/chat/completions"  # a base URL ending in /v1 is tolerated


def test_it_raises_on_http_error_with_the_servers_message(server):
    server.routes["/v1/chat/completions"] = lambda h, body: h.reply_json(
        400, {"error": {"message": "the request exceeds the available context size", "type": "invalid_request_error"}}
    )
    with pytest.raises(GeneratorUnavailable, match="HTTP 400: the request exceeds the available context size"):
        list(engine_for(server.url).stream(MESSAGES, max_new_tokens=8))


def test_it_raises_quickly_when_the_server_is_unreachable():
    engine = engine_for(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(GeneratorUnavailable, match="unreachable"):
        list(engine.stream(MESSAGES, max_new_tokens=8))
    assert time.monotonic() - started < 2


def test_it_raises_on_read_timeout_when_the_server_never_answers():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    try:
        engine = engine_for(f"http://127.0.0.1:{listener.getsockname()[1]}", read_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(GeneratorUnavailable, match="read timeout"):
            list(engine.stream(MESSAGES, max_new_tokens=8))
        assert time.monotonic() - started < 3
    finally:
        listener.close()


def test_it_raises_on_read_timeout_between_tokens(server):
    release = threading.Event()

    def route(handler, body):
        handler.start_events()
        handler.event(delta("Hello"))
        release.wait(5)

    server.routes["/v1/chat/completions"] = route
    chunks = []
    try:
        with pytest.raises(GeneratorUnavailable, match="nothing for 0.5 s"):
            for chunk in engine_for(server.url, read_timeout=0.5).stream(MESSAGES, max_new_tokens=8):
                chunks.append(chunk)
    finally:
        release.set()
    assert chunks == ["Hello"]


@pytest.mark.parametrize("chunked", [True, False])
def test_it_raises_when_the_server_goes_away_mid_answer(server, chunked):
    def route(handler, body):
        if chunked:
            handler.start_events()
            handler.event(delta("Hello"))
            handler.event(delta(" world"))
        else:  # no framing at all: the body ends when the connection does
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(
                b"data: %s\n\ndata: %s\n\n"
                % (json.dumps(delta("Hello")).encode(), json.dumps(delta(" world")).encode())
            )
        handler.close_connection = True

    server.routes["/v1/chat/completions"] = route
    chunks = []
    with pytest.raises(GeneratorUnavailable, match="went away mid-answer"):
        for chunk in engine_for(server.url).stream(MESSAGES, max_new_tokens=8):
            chunks.append(chunk)
    assert chunks == ["Hello", " world"]


def test_it_reports_an_error_event_mid_stream(server):
    def route(handler, body):
        handler.start_events()
        handler.event(delta("Hel"))
        handler.event({"error": {"message": "CUDA out of memory", "code": 500}})
        handler.end_events()

    server.routes["/v1/chat/completions"] = route
    with pytest.raises(GeneratorUnavailable, match="CUDA out of memory"):
        list(engine_for(server.url).stream(MESSAGES, max_new_tokens=8))


def test_it_takes_a_whole_answer_from_a_server_that_does_not_stream(server):
    server.routes["/v1/chat/completions"] = lambda h, body: h.reply_json(
        200,
        {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
        },
    )
    assert list(engine_for(server.url).stream(MESSAGES, max_new_tokens=8)) == ["Paris."]


def test_it_counts_tokens_with_llamacpp_tokenize(server):
    server.routes["/tokenize"] = lambda h, body: h.reply_json(
        200, {"tokens": list(range(len(body["content"].split())))}
    )
    engine = engine_for(server.url)
    assert engine.count_tokens("one two three") == 3
    assert engine.count_tokens("four five") == 2
    assert [r["body"] for r in server.requests] == [{"content": "one two three"}, {"content": "four five"}]


def test_it_estimates_tokens_without_a_tokenize_endpoint(server):
    engine = engine_for(server.url)  # /tokenize answers 404, as on trtllm-serve
    text = "The Gold card has an annual fee of 95 euros."
    assert engine.count_tokens(text) == math.ceil(len(text) / 3.5)
    assert engine.count_tokens(text + text) == math.ceil(2 * len(text) / 3.5)
    assert len(server.requests) == 1  # asked once, remembered


def test_it_is_built_from_settings(settings):
    settings.RAG_GENERATION_URL = "http://generator:8000"
    settings.RAG_GENERATION_MODEL = "smollm2"
    settings.RAG_GENERATION_API_KEY = "s3cret"
    settings.RAG_GENERATION_CONNECT_TIMEOUT = 1.5
    settings.RAG_GENERATION_READ_TIMEOUT = 30
    engine = OpenAICompatibleEngine.from_settings(settings)
    assert (engine.base_url, engine.model, engine.api_key) == ("http://generator:8000", "smollm2", "s3cret")
    assert (engine.connect_timeout, engine.read_timeout, engine.context_tokens) == (
        1.5,
        30,
        settings.RAG_GENERATOR_CONTEXT,
    )


@pytest.mark.parametrize("url", ["", "generator:8000", "ftp://generator"])
def test_it_refuses_a_missing_or_bad_url(url):
    with pytest.raises(ValueError, match="RAG_GENERATION_URL"):
        OpenAICompatibleEngine(url)


@pytest.mark.integration
@pytest.mark.slow
def test_it_answers_through_ask_with_citations(server, settings, handbook, alice):
    """The whole question path (real retrieval, embedder, guardrail, attribution)
    with the served engine; only the generation server is scripted."""
    from generation import services
    from generation.engines import get_engine

    server.routes["/v1/chat/completions"] = streaming(
        ["The Gold card", " has an annual fee of 95 euros,", " which is waived in the first year."]
    )
    settings.RAG_GENERATOR_ENGINE = SERVED
    settings.RAG_GENERATION_URL = server.url
    assert isinstance(get_engine(), OpenAICompatibleEngine)

    result = services.ask("What is the annual fee of the Gold card?", user=alice)

    assert result.found and "95 euros" in result.answer
    assert result.citations and result.citations[0]["filename"] == "handbook.pdf"
    prompt = server.requests[-1]["body"]["messages"]
    assert any("95 euros" in m["content"] for m in prompt)  # the passages reached the server

    response = api_client_for(alice).post(
        "/api/ask", {"question": "What is the annual fee of the Gold card?"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert "95 euros" in response.json()["answer"] and response.json()["citations"]
