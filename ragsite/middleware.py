"""Site-wide request guards: a cap on request bodies, enforced before anything
reads them, query strings without NUL characters, the security headers
Django does not set itself (CSP), and a 503 with Retry-After when the
database is gone."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

log = logging.getLogger(__name__)

MB = 1024 * 1024
# The views that take a file upload: their bodies may reach RAG_MAX_UPLOAD_MB
# (plus UPLOAD_FORM_MB for the form around the file); every other body
# RAG_MAX_REQUEST_MB.
UPLOAD_VIEWS = frozenset({"api-documents", "admin:ingestion_document_add"})
UPLOAD_FORM_MB = 1


def body_limit(request) -> int:
    """The most bytes the body of `request` may hold."""
    try:
        view_name = resolve(request.path_info).view_name
    except Resolver404:
        view_name = None
    if view_name in UPLOAD_VIEWS:
        return (settings.RAG_MAX_UPLOAD_MB + UPLOAD_FORM_MB) * MB
    return settings.RAG_MAX_REQUEST_MB * MB


class CappedStream:
    """A request body that raises RequestDataTooBig (and remembers it) when
    read past `limit` bytes: it bounds what is read whatever the server says
    the length is (a chunked body without Content-Length, an ASGI body)."""

    def __init__(self, stream, limit: int):
        self._stream = stream
        self.limit = limit
        self.consumed = 0
        self.exceeded = False

    def _take(self, data: bytes) -> bytes:
        self.consumed += len(data)
        if self.consumed > self.limit:
            self.exceeded = True
            raise RequestDataTooBig(f"The request body is larger than {self.limit} bytes.")
        return data

    def _size(self, size) -> int:  # one byte past the limit is enough to tell
        room = self.limit + 1 - self.consumed
        return room if size is None or size < 0 else min(size, room)

    def read(self, size=-1, /) -> bytes:
        return self._take(self._stream.read(self._size(size)))

    def readline(self, size=-1, /) -> bytes:
        return self._take(self._stream.readline(self._size(size)))

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close:
            close()


class RequestBodyLimitMiddleware:
    """First in MIDDLEWARE: a declared Content-Length over the limit is a 413
    before any byte is read (CSRF and the form parser would otherwise spool
    the whole body to disk first), and reading is capped for bodies whose
    length is not declared."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or "")
        except ValueError:
            declared = None
        limit = settings.RAG_MAX_REQUEST_MB * MB
        if request.method == "POST" and (declared is None or declared > limit):
            limit = body_limit(request)  # URL resolution only for the few requests that may be uploads
        if declared is not None and declared > limit:
            return too_large(request, limit)
        stream = request._stream = CappedStream(request._stream, limit)
        response = self.get_response(request)
        if stream.exceeded:
            return too_large(request, limit)
        return response


def too_large(request, limit: int) -> HttpResponse:
    message = f"The request is larger than the {limit // MB} MB this address accepts."
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


class ContentSecurityPolicyMiddleware:
    """Sends settings.RAG_CONTENT_SECURITY_POLICY on every response that has
    none (Django 5.2 has no CSP of its own)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.RAG_CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.RAG_CONTENT_SECURITY_POLICY)
        return response


class NulQueryMiddleware:
    """A NUL character in a query parameter is refused (400) before any view
    reads it: PostgreSQL refuses NUL in text, so every filter, search and
    lookup that passed one on answered 500 (five admin changelists did)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
        ):
            message = "A query parameter holds a NUL character."
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": message}, status=400)
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A view that finds the database gone (or SQLite locked) answers 503
    with Retry-After instead of 500 (issue #26, M5): a search or an answer
    during an outage says "try again shortly"."""

    RETRY_AFTER = 10

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import InterfaceError, OperationalError

        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        # Django closes a connection that errored and is no longer usable when
        # the request ends (close_old_connections): the next one reconnects.
        log.warning("Database unavailable for %s: %s", request.path_info, exception)
        message = "The database is unavailable; try again shortly."
        if request.path_info.startswith("/api/"):
            response = JsonResponse({"detail": message}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(self.RETRY_AFTER)
        return response
