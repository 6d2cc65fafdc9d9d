"""The shared cache, surviving a lost Redis.

Throttles, sign-in counts and answer slots live in Django's cache, Redis
when REDIS_URL is set, so that every web process counts together. With Redis
down every one of them raised, and search, ask, token, upload and the login
POST answered 500. `ResilientRedisCache` answers from a process-local cache
instead while Redis cannot be reached, logging a warning (at most once a
minute): counts are then bounded per process rather than across them, which
is the most that can be had, and nothing fails. Each call tries Redis first
(with a short connect and read timeout), so counting goes back to Redis as
soon as it answers again.
"""

from __future__ import annotations

import logging
import time

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60
# Seconds to connect to Redis and to wait for an answer: a partition must not hold a request.
SOCKET_TIMEOUT = 1.0


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, falling back to a local one while Redis is unreachable."""

    def __init__(self, server, params):
        options = {"socket_connect_timeout": SOCKET_TIMEOUT, "socket_timeout": SOCKET_TIMEOUT}
        params = {**params, "OPTIONS": {**options, **params.get("OPTIONS", {})}}
        super().__init__(server, params)
        self._local = LocMemCache(f"rag-fallback-{id(self)}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._warned_at = 0.0
        self.degraded = False  # the last call was answered locally

    def _either(self, name: str, *args, **kwargs):
        try:
            value = getattr(super(), name)(*args, **kwargs)
        except _redis_errors() as exc:
            if time.monotonic() - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = time.monotonic()
                log.warning("Redis is unreachable (%s); counting in this process until it answers again", exc)
            self.degraded = True
            return getattr(self._local, name)(*args, **kwargs)
        if self.degraded:
            self.degraded = False
            log.warning("Redis answers again; counting there")
        return value

    def add(self, *args, **kwargs):
        return self._either("add", *args, **kwargs)

    def get(self, *args, **kwargs):
        return self._either("get", *args, **kwargs)

    def set(self, *args, **kwargs):
        return self._either("set", *args, **kwargs)

    def touch(self, *args, **kwargs):
        return self._either("touch", *args, **kwargs)

    def delete(self, *args, **kwargs):
        return self._either("delete", *args, **kwargs)

    def get_many(self, *args, **kwargs):
        return self._either("get_many", *args, **kwargs)

    def has_key(self, *args, **kwargs):
        return self._either("has_key", *args, **kwargs)

    def incr(self, *args, **kwargs):
        return self._either("incr", *args, **kwargs)

    def set_many(self, *args, **kwargs):
        return self._either("set_many", *args, **kwargs)

    def delete_many(self, *args, **kwargs):
        return self._either("delete_many", *args, **kwargs)

    def clear(self, *args, **kwargs):
        return self._either("clear", *args, **kwargs)
