"""API tokens (POST /api/token/, then `Authorization: Token <key>`): stored
only as a hash, and refused once RAG_TOKEN_TTL_DAYS have passed."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def obtain(username="alice", password="alice-password-1"):
    return APIClient().post("/api/token/", {"username": username, "password": password}, format="json")


def with_token(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_token_is_given_for_a_password_and_opens_the_api(alice):
    response = obtain()
    assert response.status_code == 200
    key = response.json()["token"]
    assert with_token(key).get("/api/documents/1/").status_code == 404  # signed in: no such document
    forged = key[:-1] + ("1" if key.endswith("0") else "0")  # one character off (never the key itself)
    assert with_token(forged).get("/api/documents/1/").status_code == 401
    assert APIClient().get("/api/documents/1/").status_code == 401
    assert obtain(password="wrong").status_code == 400


def test_the_database_holds_no_token_in_plain_text(alice):
    key = obtain().json()["token"]
    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    assert key not in dump.getvalue() and key[:32] not in dump.getvalue()


def test_a_token_expires(alice, settings, monkeypatch):
    body = obtain().json()
    key = body["token"]
    assert with_token(key).get("/api/documents/1/").status_code == 404
    later = timezone.now() + timedelta(days=settings.RAG_TOKEN_TTL_DAYS, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert with_token(key).get("/api/documents/1/").status_code == 401
    fresh = obtain().json()["token"]  # a new one is given
    assert with_token(fresh).get("/api/documents/1/").status_code == 404


def test_a_user_holds_a_bounded_number_of_tokens(alice):
    from knox.models import AuthToken

    from ragsite.api import TOKENS_PER_USER

    keys = [obtain().json()["token"] for _ in range(TOKENS_PER_USER + 1)]
    assert AuthToken.objects.filter(user=alice).count() == TOKENS_PER_USER
    assert with_token(keys[0]).get("/api/documents/1/").status_code == 401  # the oldest was replaced
    assert all(with_token(key).get("/api/documents/1/").status_code == 404 for key in keys[1:])
