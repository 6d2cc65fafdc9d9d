"""Sign-in throttling. Wrong passwords are counted per client address and
user name in Django's cache (Redis when REDIS_URL is set, so that every web
process counts together); after RAG_LOGIN_FAILURES of them within
RAG_LOGIN_WINDOW_MINUTES, that name is refused from that address for the
window, and after RAG_LOGIN_ADDRESS_FAILURES of them for any names, every
name is. Passwords are checked in one place, the authentication backend, so
the login page, the admin's login and POST /api/token/ share the count; the
views only answer a refused attempt with 429."""

from __future__ import annotations

import functools
import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from rest_framework.throttling import BaseThrottle


def client_address(request) -> str:
    """The client's address as DRF's throttles see it: REMOTE_ADDR, or
    X-Forwarded-For as set by REST_FRAMEWORK["NUM_PROXIES"] trusted proxies."""
    return BaseThrottle().get_ident(request)


class FailureCount:
    """Failures counted under one key within RAG_LOGIN_WINDOW_MINUTES; at
    `limit` of them the key is locked for the window."""

    def __init__(self, key: str, limit: int):
        self.count_key, self.lock_key, self.limit = f"signin:failures:{key}", f"signin:locked:{key}", limit

    def wait(self) -> int:
        until = cache.get(self.lock_key)
        return max(0, math.ceil(until - time.time())) if until else 0

    def failed(self) -> None:
        window = settings.RAG_LOGIN_WINDOW_MINUTES * 60
        cache.add(self.count_key, 0, window)  # the window starts at the first failure
        try:
            count = cache.incr(self.count_key)
        except ValueError:  # the window ended between the two calls
            count = 1
            cache.set(self.count_key, count, window)
        if count >= self.limit:
            cache.add(self.lock_key, time.time() + window, window)

    def reset(self) -> None:
        cache.delete(self.count_key)


class SignInAttempts:
    """The failed sign-ins of one user name from one address
    (RAG_LOGIN_FAILURES lock that name there), and of every name from that
    address (RAG_LOGIN_ADDRESS_FAILURES lock the address: one wrong password
    for each of 40 names, password spraying, was never refused)."""

    def __init__(self, address: str | None, username: str):
        address = address or ""  # no address (a request without REMOTE_ADDR): one shared count
        digest = hashlib.sha256(f"{address}\n{(username or '').strip().lower()}".encode()).hexdigest()
        self.name = FailureCount(digest, settings.RAG_LOGIN_FAILURES)
        self.address = FailureCount(
            "address:" + hashlib.sha256(address.encode()).hexdigest(), settings.RAG_LOGIN_ADDRESS_FAILURES
        )

    @classmethod
    def of(cls, request, username) -> SignInAttempts | None:
        """None for callers without a request (the CLI): they are not throttled."""
        return None if request is None else cls(client_address(request), username)

    def wait(self) -> int:
        """Seconds until this name may sign in from this address again (0: now)."""
        return max(self.name.wait(), self.address.wait())

    def failed(self) -> None:
        self.name.failed()
        self.address.failed()

    def succeeded(self) -> None:
        self.name.reset()  # the address's count goes on: one valid account must not hide a spray


class ThrottledModelBackend(ModelBackend):
    """Django's model backend, refusing (PermissionDenied stops authenticate())
    a user name that is locked for the caller's address, and counting wrong
    passwords."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        attempts = SignInAttempts.of(request, username)
        if attempts and attempts.wait():
            raise PermissionDenied("Too many failed sign-ins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if attempts:
            attempts.succeeded() if user is not None else attempts.failed()
        return user


def throttled_sign_in(view):
    """Wraps a login form view: a POST for a locked name is answered 429 with
    the login form saying how long to wait (the backend would refuse it too,
    but as an ordinary wrong password)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method == "POST":
            wait = SignInAttempts(client_address(request), request.POST.get("username", "")).wait()
            if wait:
                context = {
                    "form": AuthenticationForm(request),
                    "next": request.POST.get("next", ""),
                    "throttled_minutes": math.ceil(wait / 60),
                }
                return render(request, "registration/login.html", context, status=429)
        return view(request, *args, **kwargs)

    return wrapped


class SignInThrottle(BaseThrottle):
    """DRF: a request that names a locked user is throttled (429 with Retry-After)."""

    def allow_request(self, request, view):
        username = request.data.get("username", "") if hasattr(request.data, "get") else ""
        self._wait = SignInAttempts(client_address(request), str(username)).wait()
        return not self._wait

    def wait(self):
        return self._wait
