"""Wrong passwords are counted per address and user name in the cache; past
RAG_LOGIN_FAILURES the name is refused from that address (429) at every
door: the login page, the admin's login and POST /api/token/."""

import itertools
import json
import os
import subprocess
import sys
import uuid

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from ragsite.sign_in_throttle import SignInAttempts

_addresses = (f"203.0.113.{n}" for n in itertools.count(1))  # one per test: counters never meet


@pytest.fixture
def address(settings):
    settings.RAG_LOGIN_FAILURES = 3
    return next(_addresses)


def sign_in(client, address, username, password, path="/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_login_page_refuses_a_name_after_too_many_wrong_passwords(client, alice, bob, address):
    for _ in range(3):
        assert sign_in(client, address, "alice", "wrong").status_code == 200
    refused = sign_in(client, address, "alice", "alice-password-1")  # even the right one, for the window
    assert refused.status_code == 429 and b"Too many failed sign-ins" in refused.content
    assert "_auth_user_id" not in client.session
    # Another name from that address, and that name from elsewhere, still sign in.
    assert sign_in(client, address, "bob", "bob-password-1").status_code == 302
    client.logout()
    assert sign_in(client, next(_addresses), "alice", "alice-password-1").status_code == 302


def test_one_wrong_password_for_each_of_many_names_locks_the_address(client, alice, settings, address):
    # Password spraying: 40 names, one wrong password each, was never refused (#26 L1).
    settings.RAG_LOGIN_ADDRESS_FAILURES = 5
    for n in range(5):
        assert sign_in(client, address, f"user{n}", "Winter2026!").status_code == 200
    refused = sign_in(client, address, "alice", "alice-password-1")  # every name, for the window
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    assert sign_in(client, next(_addresses), "alice", "alice-password-1").status_code == 302  # elsewhere: fine
    token = APIClient().post("/api/token/", {"username": "alice", "password": "x"}, REMOTE_ADDR=address)
    assert token.status_code == 429


def test_a_successful_sign_in_starts_the_count_again(client, alice, address):
    for _ in range(2):
        sign_in(client, address, "alice", "wrong")
    assert sign_in(client, address, "alice", "alice-password-1").status_code == 302
    client.logout()
    for _ in range(2):
        sign_in(client, address, "alice", "wrong")
    assert sign_in(client, address, "alice", "alice-password-1").status_code == 302


def test_the_admin_login_and_the_token_share_the_count(client, admin_user, address):
    sign_in(client, address, "admin", "wrong", path="/admin/login/")
    sign_in(client, address, "admin", "wrong", path="/accounts/login/")
    api = APIClient()
    assert api.post("/api/token/", {"username": "admin", "password": "wrong"}, REMOTE_ADDR=address).status_code == 400
    assert sign_in(client, address, "admin", "admin-password-1", path="/admin/login/").status_code == 429
    refused = api.post("/api/token/", {"username": "admin", "password": "admin-password-1"}, REMOTE_ADDR=address)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "token" not in refused.json()


def test_a_forwarded_for_header_does_not_give_a_fresh_address(client, alice, address):
    for n in range(3):
        client.post(
            "/accounts/login/",
            {"username": "alice", "password": "wrong"},
            REMOTE_ADDR=address,
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
    assert sign_in(client, address, "alice", "alice-password-1").status_code == 429


def test_the_token_endpoint_has_a_rate_per_address(alice, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "token": "2/min"})
    api, address = APIClient(), next(_addresses)
    answers = [
        api.post("/api/token/", {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR=address)
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]


def redis_available() -> bool:
    try:
        import redis

        return redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=0.5).ping()
    except Exception:
        return False


@pytest.mark.integration
@pytest.mark.skipif(not redis_available(), reason="no Redis on 127.0.0.1:6379")
def test_with_redis_every_process_counts_together(settings, alice, client, address, tmp_path):
    # The settings choose Redis for the cache when REDIS_URL is set ...
    env = {
        **os.environ,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "RAG_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "ragsite.settings",
    }
    script = "import django, json; django.setup(); from django.conf import settings; print(json.dumps(settings.CACHES))"
    chosen = json.loads(
        subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    assert chosen["default"]["BACKEND"] == "ragsite.cache.ResilientRedisCache"
    # ... and failures another process counted there lock the name here.
    prefix = f"rag-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {**chosen["default"], "KEY_PREFIX": prefix}}
    other = f"""
import django
django.setup()
from django.conf import settings
from django.test.utils import override_settings
from ragsite.sign_in_throttle import SignInAttempts
with override_settings(CACHES={settings.CACHES!r}, RAG_LOGIN_FAILURES=3):
    for _ in range(3):
        SignInAttempts({address!r}, "alice").failed()
"""
    subprocess.run([sys.executable, "-c", other], env=env, check=True, capture_output=True)
    try:
        assert SignInAttempts(address, "alice").wait() > 0
        assert sign_in(client, address, "alice", "alice-password-1").status_code == 429
    finally:
        attempts = SignInAttempts(address, "alice")
        caches["default"].delete_many(
            [key for count in (attempts.name, attempts.address) for key in (count.count_key, count.lock_key)]
        )
