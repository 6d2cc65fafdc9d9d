"""The database gone while a view runs (issue #26, M5): search and ask answer
503 with Retry-After, not 500, and answer again once it is back. The outage is
the driver's own error raised where the view first queries (the shared
PostgreSQL of the machine is not stopped by a test); Django's
close_old_connections drops the broken connection as the request ends."""

import pytest
from django.db import OperationalError

from retrieval.search import search_many as real_search_many
from tests.conftest import api_client_for


@pytest.fixture
def outage(monkeypatch, settings):
    from retrieval import search as searching
    from tests import fakes

    fakes.install(monkeypatch, settings)  # the stand-in embedder for the search after the outage

    def gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(searching, "search_many", gone)
    return monkeypatch


def test_search_and_ask_answer_503_with_retry_after_while_the_database_is_gone(alice, outage, client):
    from retrieval import search as searching

    api = api_client_for(alice)
    found = api.get("/api/search", {"q": "annual fee"})
    assert found.status_code == 503 and found["Retry-After"] == "10"
    assert "database is unavailable" in found.json()["detail"]
    asked = api.post("/api/ask", {"question": "What is the annual fee?"}, format="json")
    assert asked.status_code == 503 and asked["Retry-After"]
    outage.setattr(searching, "search_many", real_search_many)
    assert api.get("/api/search", {"q": "annual fee"}).status_code == 200  # the outage over, search answers


def test_a_page_says_so_too(alice, client, monkeypatch):
    from ragsite import views

    def gone(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(views, "conversations_for", gone)
    client.force_login(alice)
    page = client.get("/")
    assert page.status_code == 503 and "try again shortly" in page.content.decode()


def test_other_database_errors_are_not_hidden(alice, client, monkeypatch):
    from django.db import IntegrityError

    from ragsite import views

    def broken(*args, **kwargs):
        raise IntegrityError("a bug, not an outage")

    monkeypatch.setattr(views, "conversations_for", broken)
    client.force_login(alice)
    client.raise_request_exception = False
    assert client.get("/").status_code == 500
