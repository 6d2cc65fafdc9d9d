"""The served engine against a real OpenAI-compatible server: llama.cpp's own
server (llama-cpp-python[server]) on the packaged GGUF, in its own process."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
from django.conf import settings as django_settings

from generation.engines.base import GeneratorUnavailable, generate
from generation.engines.openai_compat import OpenAICompatibleEngine
from tests.conftest import api_client_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGES = [{"role": "user", "content": "Write three sentences about the sea."}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    log = tempfile.TemporaryFile()  # a file, not a pipe: llama.cpp logs a lot and a full pipe would block it
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            django_settings.RAG_GENERATOR_MODEL,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
            "--chat_format",
            "chatml",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail("llama.cpp server exited:\n" + log.read().decode(errors="replace")[-3000:])
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    pytest.fail("llama.cpp server did not come up")


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is in requirements-test.txt")
    port = free_port()
    process = start_server(port)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)


def test_it_streams_an_answer_from_a_real_server(server):
    engine = OpenAICompatibleEngine(server, context_tokens=2048)
    pieces = list(engine.stream(MESSAGES, max_new_tokens=40))
    assert len(pieces) >= 5  # token by token, not one block
    assert "sea" in "".join(pieces).lower()
    assert engine.count_tokens("The sea is wide.") >= 4


def test_it_honours_the_token_budget_and_stop_sequences(server):
    engine = OpenAICompatibleEngine(server, context_tokens=2048)
    short = generate(engine, MESSAGES, max_new_tokens=5)
    assert 0 < engine.count_tokens(short) <= 6
    full = generate(engine, MESSAGES, max_new_tokens=40)
    word = full.split()[3]
    stopped = generate(engine, MESSAGES, max_new_tokens=40, stop=[word])
    assert word not in stopped and full.startswith(stopped.rstrip())


def test_a_read_timeout_is_reported(server):
    engine = OpenAICompatibleEngine(server, context_tokens=2048, read_timeout=0.001)
    with pytest.raises(GeneratorUnavailable, match="(?i)time"):
        generate(engine, MESSAGES, max_new_tokens=200)


def test_a_server_that_goes_away_mid_answer_is_reported():
    pytest.importorskip("llama_cpp.server.app")
    port = free_port()
    process = start_server(port)
    engine = OpenAICompatibleEngine(f"http://127.0.0.1:{port}", context_tokens=2048)
    received = []
    with pytest.raises(GeneratorUnavailable):
        for piece in engine.stream(MESSAGES, max_new_tokens=400):
            received.append(piece)
            if len(received) == 3:
                process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert len(received) >= 3


@pytest.mark.django_db
def test_the_api_answers_through_the_served_engine(server, settings, alice, handbook):
    settings.RAG_GENERATOR_ENGINE = "auto"
    settings.RAG_GENERATION_URL = server
    body = (
        api_client_for(alice)
        .post("/api/ask", {"question": "What is the annual fee of the Gold card?"}, format="json")
        .json()
    )
    assert body["found"] and body["answer"] and body["citations"][0]["page"] == 2


@pytest.mark.django_db
def test_an_unreachable_generator_is_a_503(settings, alice, handbook):
    settings.RAG_GENERATOR_ENGINE = "auto"
    settings.RAG_GENERATION_URL = f"http://127.0.0.1:{free_port()}"
    response = api_client_for(alice).post(
        "/api/ask", {"question": "What is the annual fee of the Gold card?"}, format="json"
    )
    # A readable message; the server's address is for the log (tests/generation/test_api_errors.py).
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]
    assert settings.RAG_GENERATION_URL not in response.json()["detail"]
