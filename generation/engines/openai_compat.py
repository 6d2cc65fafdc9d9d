"""Served engine: a client of an OpenAI-compatible chat server with streaming
(`trtllm-serve` with a TensorRT-LLM engine on a GPU, llama.cpp's server, vLLM).

Only the standard library: the web and worker processes stay light. The
answer streams as Server-Sent Events (`data: {...}` lines, ended by
`data: [DONE]`); every failure surfaces as `GeneratorUnavailable` with a
message that says what happened (unreachable, HTTP error, timeout, the server
went away mid-answer).

Token counts: servers with llama.cpp's `POST /tokenize` are asked; others
(trtllm-serve, vLLM's differently shaped endpoint) get a conservative estimate
of one token per 3.5 characters, rounded up. English text averages about 4
characters per token, so the estimate over-counts and prompts stay within the
context window; it is remembered per engine which of the two applies.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import socket
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from generation.engines.base import GeneratorUnavailable

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.5
ERROR_BODY_LIMIT = 64 * 1024
# What a socket or HTTP exchange can raise (timeouts are OSError too).
NETWORK_ERRORS = (OSError, http.client.HTTPException)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class OpenAICompatibleEngine:
    def __init__(
        self,
        base_url: str,
        *,
        model: str = "",
        api_key: str = "",
        context_tokens: int = 2048,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ):
        if not base_url:
            raise ValueError("The served generator needs a URL (set RAG_GENERATION_URL, e.g. http://generator:8000).")
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"RAG_GENERATION_URL must be an http(s) URL, got {base_url!r}")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("Generation timeouts must be positive.")
        prefix = parts.path[:-3] if parts.path.endswith("/v1") else parts.path  # tolerate a base URL ending in /v1
        self.base_url = f"{parts.scheme}://{parts.netloc}{prefix}"
        self._scheme, self._host, self._port, self._prefix = parts.scheme, parts.hostname, parts.port, prefix
        self.model = model
        self.api_key = api_key
        self.context_tokens = context_tokens
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._has_tokenize: bool | None = None  # unknown until the first count_tokens

    @classmethod
    def from_settings(cls, settings) -> OpenAICompatibleEngine:
        return cls(
            settings.RAG_GENERATION_URL,
            model=settings.RAG_GENERATION_MODEL,
            api_key=settings.RAG_GENERATION_API_KEY,
            context_tokens=settings.RAG_GENERATOR_CONTEXT,
            connect_timeout=settings.RAG_GENERATION_CONNECT_TIMEOUT,
            read_timeout=settings.RAG_GENERATION_READ_TIMEOUT,
        )

    # -- HTTP ---------------------------------------------------------------

    def _post(
        self, path: str, payload: dict, *, accept: str
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Connect (connect timeout), send, and wait for the status line (read timeout).
        The caller reads the body and closes the connection."""
        url = self.base_url + path
        connection_class = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = connection_class(self._host, self._port, timeout=self.connect_timeout)
        try:
            connection.connect()
        except TimeoutError:
            connection.close()
            raise GeneratorUnavailable(
                f"Generation server unreachable at {url}: no connection within {self.connect_timeout:g} s."
            ) from None
        except OSError as error:
            connection.close()
            raise GeneratorUnavailable(f"Generation server unreachable at {url}: {error.strerror or error}.") from None
        connection.sock.settimeout(self.read_timeout)
        headers = {"Content-Type": "application/json", "Accept": accept}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            connection.request("POST", self._prefix + path, body=json.dumps(payload).encode(), headers=headers)
            return connection, connection.getresponse()
        except NETWORK_ERRORS as error:
            connection.close()
            raise self._failure(url, error, "before answering") from None

    def _failure(self, url: str, error: Exception, during: str = "mid-answer") -> GeneratorUnavailable:
        if isinstance(error, (TimeoutError, socket.timeout)):
            return GeneratorUnavailable(
                f"Generation server at {url} sent nothing for {self.read_timeout:g} s (read timeout)."
            )
        return GeneratorUnavailable(f"Generation server at {url} went away {during}: {error!r}.")

    @staticmethod
    def _error_message(response: http.client.HTTPResponse) -> str:
        body = response.read(ERROR_BODY_LIMIT).decode("utf-8", "replace").strip()
        try:
            data = json.loads(body)
        except ValueError:
            return body[:500] or response.reason
        if isinstance(data, dict):
            error = data.get("error", data)
            if isinstance(error, dict):
                return str(error.get("message") or error.get("detail") or error)[:500]
            return str(error)[:500]
        return body[:500]

    # -- interface ----------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        if self._has_tokenize is False:
            return estimate_tokens(text)
        connection, response = self._post("/tokenize", {"content": text}, accept="application/json")
        try:
            if response.status != 200:
                log.info(
                    "No llama.cpp /tokenize at %s (HTTP %s): estimating token counts", self.base_url, response.status
                )
                self._has_tokenize = False
                return estimate_tokens(text)
            try:
                tokens = json.loads(response.read()).get("tokens")
            except (ValueError, AttributeError):
                tokens = None
            if not isinstance(tokens, list):  # some other /tokenize than llama.cpp's
                self._has_tokenize = False
                return estimate_tokens(text)
            self._has_tokenize = True
            return len(tokens)
        except NETWORK_ERRORS as error:
            raise self._failure(self.base_url + "/tokenize", error, "while counting tokens") from None
        finally:
            connection.close()

    def stream(self, messages, *, max_new_tokens: int, stop: Sequence[str] = ()) -> Iterator[str]:
        payload = {
            "messages": list(messages),
            "stream": True,
            "temperature": 0,
            "max_tokens": max_new_tokens,
            "stop": list(stop),
        }
        if self.model:
            payload["model"] = self.model
        url = self.base_url + "/v1/chat/completions"
        connection, response = self._post("/v1/chat/completions", payload, accept="text/event-stream")
        try:
            if response.status != 200:
                raise GeneratorUnavailable(
                    f"Generation server at {url} answered HTTP {response.status}: {self._error_message(response)}"
                )
            if response.getheader("Content-Type", "").startswith("application/json"):
                # A server that ignores "stream": the whole answer at once.
                yield from _whole_answer(response.read(), url)
                return
            yield from _sse_deltas(response, url)
        except NETWORK_ERRORS as error:
            raise self._failure(url, error) from None
        finally:
            connection.close()


def _check(event: dict, url: str) -> list:
    if "error" in event:
        error = event["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise GeneratorUnavailable(f"Generation server at {url} failed mid-answer: {message}")
    return event.get("choices") or []


def _parse(payload: bytes | str, url: str) -> dict:
    try:
        event = json.loads(payload)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise GeneratorUnavailable(f"Generation server at {url} sent an unreadable reply: {payload[:200]!r}")
    return event


def _whole_answer(body: bytes, url: str) -> Iterator[str]:
    for choice in _check(_parse(body, url), url):
        content = (choice.get("message") or {}).get("content")
        if content:
            yield content


def _sse_deltas(response: http.client.HTTPResponse, url: str) -> Iterator[str]:
    """Content deltas from a chat-completions event stream, until `data: [DONE]`.

    Every `data:` line is one event (OpenAI-style streams never split one over
    several lines); comments, other fields and blank lines are skipped. The
    connection closing before [DONE] is a failure, unless a choice already
    reported its finish_reason (the answer is complete then)."""
    finished = False
    while True:
        raw = response.readline()
        if not raw:
            if finished:
                return
            raise GeneratorUnavailable(
                f"Generation server at {url} went away mid-answer (connection closed before [DONE])."
            )
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        for choice in _check(_parse(payload, url), url):
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield content
            if choice.get("finish_reason"):
                finished = True
