"""Security headers on every page: a strict Content-Security-Policy that the
site's own pages pass (no inline script or style), no sniffing, no framing,
the referrer kept to the site; HSTS, the HTTPS redirect and secure cookies
when RAG_HTTPS says the site is served over HTTPS (and not otherwise, so that
`make run` and the tests work on http://127.0.0.1)."""

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style
    elements and attributes, event-handler attributes."""

    def __init__(self):
        super().__init__()
        self.blocked = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src") and attrs.get("type") != "application/json":
            self.blocked.append("inline <script>")
        if tag == "style":
            self.blocked.append("<style>")
        self.blocked += [f"{name}= on <{tag}>" for name in attrs if name == "style" or name.startswith("on")]


def blocked_by_csp(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.blocked


def test_the_chat_page_sends_a_strict_policy_and_the_security_headers(client, alice):
    client.force_login(alice)
    response = client.get("/")
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/c/{conversation}/",
        "/accounts/login/",
        "/admin/",
        "/admin/ingestion/document/",
        "/admin/ingestion/document/add/",
        "/admin/retrieval/retrieverversion/",
        "/admin/generation/generatorversion/",
        "/admin/generation/generatorversion/finetune/",
    ],
)
def test_the_sites_pages_have_nothing_the_policy_blocks(client, admin_user, path):
    from generation.models import Conversation
    from ingestion.models import Collection, Document

    conversation = Conversation.objects.create(user=admin_user, title="Fees")
    Document.objects.create(
        collection=Collection.objects.create(name="manuals"),
        title="Broken",
        sha256="0" * 64,
        original_filename="broken.pdf",
        file="documents/broken.pdf",
        status="failed",
        error="Damaged PDF.",
    )
    if path != "/accounts/login/":
        client.force_login(admin_user)
    response = client.get(path.format(conversation=conversation.pk))
    assert response.status_code == 200
    assert blocked_by_csp(response.content.decode()) == []
    if path in ("/admin/ingestion/document/", "/admin/retrieval/retrieverversion/"):  # status colours, by class
        assert "ragsite/admin.css" in response.content.decode() and "rag-status-" in response.content.decode()


def settings_with(env: dict, tmp_path) -> dict:
    script = (
        "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({n: getattr(s, n) "
        "for n in ['SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
        "'SECURE_PROXY_SSL_HEADER']}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=clean_env(env, tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def clean_env(env: dict, tmp_path) -> dict:
    names = (
        "RAG_HTTPS",
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
    )
    base = {k: v for k, v in os.environ.items() if k not in names}
    return {**base, "DJANGO_SETTINGS_MODULE": "ragsite.settings", "RAG_DATA_DIR": str(tmp_path), **env}


def test_https_settings_are_off_on_plain_http_and_in_debug(tmp_path):
    off = {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }
    assert settings_with({}, tmp_path).items() >= off.items()
    assert settings_with({"RAG_HTTPS": "true", "DEBUG": "true"}, tmp_path).items() >= off.items()


def test_behind_https_the_deploy_check_has_no_transport_warnings(tmp_path):
    assert settings_with({"RAG_HTTPS": "true"}, tmp_path) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    env = clean_env({"RAG_HTTPS": "true", "SECRET_KEY": "k" * 20 + "-Zq8vLr2#pW5nX0cT7yB4mJ1sH6dF9gK3aE"}, tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    report = result.stdout + result.stderr
    assert "security.W" in report or "no issues" in report  # the check ran
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning not in report
