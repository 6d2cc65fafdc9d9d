"""Redis stopped and started again under a running site (issue #26, M2): a
Redis of the test's own on a port of its own. While it is down the
throttles, sign-in counts and answer slots count in the process instead of
failing (search, ask, token and the login POST answered 500), and once it is
back they count in Redis again."""

import shutil
import socket
import subprocess
import time
import uuid

import pytest
from django.core.cache import caches

from tests.conftest import api_client_for

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
REDIS = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    def __init__(self, port: int, folder):
        self.port, self.folder, self.process = port, folder, None

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def own_redis(settings, tmp_path):
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    redis = OwnRedis(free_port(), tmp_path)
    redis.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "ragsite.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
            "KEY_PREFIX": f"rag-test-{uuid.uuid4().hex}",
        }
    }
    yield redis
    if redis.process.poll() is None:
        redis.stop()


def doors(client, alice):
    """What answered 500 with Redis down: the login POST, a token, the API (its throttles)."""
    login = client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"})
    token = api_client_for(alice).post("/api/token/", {"username": "alice", "password": "wrong"}, format="json")
    documents = api_client_for(alice).get("/api/documents/")
    return login.status_code, token.status_code, documents.status_code


def test_the_site_counts_in_the_process_while_redis_is_down_and_in_redis_once_it_is_back(
    client, alice, own_redis, caplog
):
    assert doors(client, alice) == (302, 400, 200)
    assert caches["default"].degraded is False
    own_redis.stop()
    started = time.monotonic()
    client.logout()
    assert doors(client, alice) == (302, 400, 200)  # not 500
    assert time.monotonic() - started < 10  # refused at once, not held
    assert caches["default"].degraded is True
    assert any("Redis is unreachable" in r.getMessage() for r in caplog.records)
    own_redis.start()
    caches["default"].set("after-outage", 1)
    assert caches["default"].degraded is False
    import redis

    keys = redis.Redis(port=own_redis.port).keys("*after-outage*")
    assert keys  # counted in Redis again
