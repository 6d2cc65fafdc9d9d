"""Request bodies: one over the limit is refused (413) before anything reads
it, uploads have a larger limit of their own, a body of undeclared length is
capped as it is read, and JSON nested too deep is a 400, not a 500."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpResponse
from django.test import Client, RequestFactory

from ingestion.models import Document
from ragsite.middleware import MB, RequestBodyLimitMiddleware, body_limit
from tests.conftest import api_client_for

received = []  # bytes of uploaded files that reached Django's upload handlers


class RecordingUploadHandler(FileUploadHandler):
    """Stands in for the handler that spools an upload to the temporary folder."""

    def receive_data_chunk(self, raw_data, start):
        received.append(len(raw_data))
        return None

    def file_complete(self, file_size):
        return None


class CountingBody(io.BytesIO):
    consumed = 0

    def read(self, size=-1, /):
        data = super().read(size)
        self.consumed += len(data)
        return data


@pytest.fixture
def recorded_uploads(settings):
    settings.FILE_UPLOAD_HANDLERS = ["tests.test_request_limits.RecordingUploadHandler"]
    received.clear()
    return received


@pytest.mark.django_db
def test_it_refuses_a_large_anonymous_post_before_reading_it(settings, recorded_uploads):
    # The audit's 300 MB POST to the login page, at a 1 MB limit: CSRF used to
    # parse (spool to disk) the whole multipart body before its 403.
    settings.RAG_MAX_REQUEST_MB = 1
    client = Client(enforce_csrf_checks=True)
    upload = SimpleUploadedFile("big.bin", b"x" * (2 * MB))
    response = client.post("/accounts/login/", {"username": "alice", "password": "x", "file": upload})
    assert response.status_code == 413
    assert recorded_uploads == []


def test_it_refuses_by_the_declared_length_without_reading_the_body(settings):
    settings.RAG_MAX_REQUEST_MB = 1
    body = io.BytesIO(b"x" * 10)
    request = RequestFactory().post(
        "/accounts/login/",
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(300 * MB),
        **{"wsgi.input": body},
    )
    response = RequestBodyLimitMiddleware(lambda request: pytest.fail("the view was called"))(request)
    assert response.status_code == 413 and body.tell() == 0


def test_uploads_have_the_larger_limit_of_uploads(settings):
    settings.RAG_MAX_REQUEST_MB = 1
    settings.RAG_MAX_UPLOAD_MB = 4
    factory = RequestFactory()
    assert body_limit(factory.post("/accounts/login/")) == 1 * MB
    assert body_limit(factory.post("/api/ask")) == 1 * MB
    assert body_limit(factory.post("/api/documents/")) == 5 * MB  # the file and its form
    assert body_limit(factory.post("/admin/ingestion/document/add/")) == 5 * MB
    assert body_limit(factory.post("/admin/ingestion/document/1/change/")) == 1 * MB


def test_an_api_upload_over_the_upload_limit_is_refused_before_it_is_stored(admin_user, settings):
    settings.RAG_MAX_REQUEST_MB = 1
    settings.RAG_MAX_UPLOAD_MB = 2
    client = api_client_for(admin_user)
    fits = SimpleUploadedFile(
        "fits.txt", b"word " * (300 * 1024)
    )  # 1.5 MB: over the request limit, within the upload's
    assert client.post("/api/documents/", {"file": fits}, format="multipart").status_code == 202
    too_big = SimpleUploadedFile("big.txt", b"x" * (4 * MB))
    response = client.post("/api/documents/", {"file": too_big}, format="multipart")
    assert response.status_code == 413 and "3 MB" in response.json()["detail"]
    assert Document.objects.count() == 1


def test_a_body_of_undeclared_length_is_capped_as_it_is_read(settings):
    # A chunked request reaches Django without Content-Length (ASGI servers
    # hand over the whole body): reading stops at the limit.
    settings.RAG_MAX_REQUEST_MB = 1
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/accounts/login/",
        "query_string": b"",
        "headers": [(b"content-type", b"application/octet-stream"), (b"transfer-encoding", b"chunked")],
    }
    body = CountingBody(b"x" * (3 * MB))
    request = ASGIRequest(scope, body)
    read = []

    def view(request):
        read.append(len(request.body))
        return HttpResponse("read it all")

    response = RequestBodyLimitMiddleware(convert_exception_to_response(view))(request)
    assert response.status_code == 413
    assert read == [] and body.consumed <= MB + 1


def test_a_body_within_the_limit_reads_as_before(settings):
    settings.RAG_MAX_REQUEST_MB = 1
    request = RequestFactory().post("/api/ask", data=b"x" * 1000, content_type="application/octet-stream")
    response = RequestBodyLimitMiddleware(lambda request: HttpResponse(str(len(request.body))))(request)
    assert response.status_code == 200 and response.content == b"1000"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/ask", "/api/token/"])
def test_json_nested_too_deep_is_a_400(alice, path):
    response = api_client_for(alice).post(path, "[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
