"""A hostile value at every door: the chat (its page, its forms, the
streamed answers it asks for with a session), the API, the uploads (API and
admin) and the admin. Each answer is a 4xx or a clean 2xx/3xx, never a 5xx,
and no page reflects the value's HTML unescaped.

Values a transport cannot carry as text (a lone surrogate in a form or a
URL) go as the invalid UTF-8 bytes a client would send instead."""

import json
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from generation.models import Conversation
from ingestion.models import Collection, Document
from tests.conftest import api_client_for

SCRIPT = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
HOSTILE = {
    "huge": "fee " * 50_000,  # 200 KB: over every field's limit, under the request limit
    "null": "annual\x00fee",
    "rtl-override": "fee \u202etxt.exe\u202c",
    "template": "{{ settings.SECRET_KEY }}{% debug %}${7*7}",
    "script": SCRIPT,
    "sql": "'; DROP TABLE ingestion_document; -- \" OR 1=1",
    "surrogate": "fee \ud800 \udfff",
    "absurd-int": str(2**70),
    "negative": "-1",
    "float": "1e999",
    "nan": "NaN",
    "format": "%s%s%s%n \\1 \\g<0>",
    "combining": "Z\u0334\u0321\u0353a" * 200 + "\U0001f0a1",
    "empty": "",
}
NESTED = "[" * 100_000  # a JSON body nested far past any parser's recursion


def as_query(value: str) -> str:
    """The value percent-encoded as UTF-8; a lone surrogate as its invalid bytes."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def as_form(fields: dict) -> str:
    return "&".join(f"{quote(k)}={as_query(v)}" for k, v in fields.items())


def assert_clean(response, allowed=range(200, 500)):
    """A 4xx or a 2xx/3xx; HTML never carries the script unescaped."""
    assert response.status_code in allowed, (response.status_code, response.content[:500])
    if response.get("Content-Type", "").startswith("text/html") and not getattr(response, "streaming", False):
        assert b'<script>alert("xss")' not in response.content
        assert b"<img src=x" not in response.content


@pytest.fixture
def chat_client(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")  # the CSRF cookie, as the chat page sets it for chat.js
    return client


@pytest.fixture
def unthrottled(monkeypatch, settings):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {s: "100000/min" for s in SimpleRateThrottle.THROTTLE_RATES}
    )
    settings.RAG_MAX_ANSWERS_PER_USER = 1000


def read(response) -> bytes:
    return b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content


def each(values: dict, check) -> None:
    """check(value) for every value; every failure is reported together, by
    name (one test per door keeps the database set up once, not per value)."""
    failures = []
    for name, value in values.items():
        try:
            check(value)
        except Exception as exc:  # an AssertionError, or the view's own exception re-raised by the test client
            failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
    assert not failures, "\n".join(failures)


# -- the chat -------------------------------------------------------------
def test_the_chat_page_and_its_search(chat_client):
    def check(value):
        # A NUL in a query parameter is refused on every page (ragsite.middleware.NulQueryMiddleware).
        assert_clean(chat_client.get(f"/?q={as_query(value)}"), allowed=[400] if "\x00" in value else [200])
        assert_clean(chat_client.get(f"/c/{as_query(value)}/"), allowed=[200, 404])  # not a number: no route

    each(HOSTILE, check)


def test_a_question_from_the_chat_is_answered_or_refused_and_shown_escaped(chat_client, fees, unthrottled):
    def check(question):
        # As chat.js asks: a streamed POST with the session and its CSRF token.
        before = Conversation.objects.count()
        body = json.dumps({"question": question, "stream": True})  # ensure_ascii: a surrogate as \ud800
        response = chat_client.post(
            "/api/ask",
            body,
            content_type="application/json",
            HTTP_ACCEPT="text/event-stream",
            HTTP_X_CSRFTOKEN=chat_client.cookies["csrftoken"].value,
        )
        assert_clean(response, allowed=[200, 400])
        if response.status_code != 200:
            assert Conversation.objects.count() == before
            return
        events = read(response).decode()
        assert events.rstrip().split("\n\n")[-1].startswith("event: done"), events[-500:]
        conversation = Conversation.objects.latest("pk")
        assert_clean(chat_client.get(f"/c/{conversation.pk}/"), allowed=[200])
        message = conversation.messages.latest("pk")
        assert_clean(chat_client.get(f"/c/{conversation.pk}/m/{message.pk}/"), allowed=[200])

    each(HOSTILE, check)
    assert_clean(chat_client.get("/"), allowed=[200])  # the sidebar lists every title


def test_a_conversation_renamed_to_anything_still_renders(chat_client, alice):
    conversation = Conversation.objects.create(user=alice, title="Fees")

    def check(title):
        response = chat_client.post(
            f"/c/{conversation.pk}/rename/",
            as_form({"title": title}),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_CSRFTOKEN=chat_client.cookies["csrftoken"].value,
        )
        assert_clean(response, allowed=[302])
        assert_clean(chat_client.get(f"/c/{conversation.pk}/"), allowed=[200])
        assert_clean(chat_client.get("/"), allowed=[200])

    each(HOSTILE, check)


def test_the_chats_ids_past_any_key_are_not_found(chat_client):
    paths = [
        "/c/{}/",
        "/c/{}/m/{}/",
        "/documents/{}/file",
        "/citations/{}/page.png",
        "/passages/{}/around/",
        "/c/{}/delete/",
        "/c/{}/rename/",
    ]

    def check(number):
        for path in paths:
            url = path.format(number, number)
            response = chat_client.post(url) if url.endswith(("delete/", "rename/")) else chat_client.get(url)
            assert_clean(response, allowed=[403, 404])  # a POST without its CSRF token: 403

    each({"zero": 0, "past-int64": 2**63, "past-any": 2**70}, check)


# -- the API --------------------------------------------------------------
def test_search_parameters(alice, fees, unthrottled):
    client = api_client_for(alice)

    def check(value):
        for field in ["q", "k", "offset", "collection", "document", "since", "until"]:
            query = f"q=gold+fee&{field}={as_query(value)}" if field != "q" else f"q={as_query(value)}"
            assert_clean(client.get(f"/api/search?{query}"), allowed=[200, 400])

    each(HOSTILE, check)


def test_ask_fields(alice, fees, unthrottled):
    client = api_client_for(alice)

    def check(value):
        for field in ["question", "collection", "conversation_id", "stream"]:
            body = {"question": "What is the annual fee?", field: [value] if field == "collection" else value}
            response = client.post("/api/ask", json.dumps(body), content_type="application/json")
            assert_clean(response, allowed=[200, 400, 404])
            read(response)

    each(HOSTILE, check)


JSON_BODIES = {
    "nested": NESTED,
    "nested-field": '{"question": ' + "[" * 5000 + "]" * 5000 + "}",
    "overflowing-number": '{"question": 1e999, "conversation_id": 1e999}',
    "nan": '{"question": NaN, "conversation_id": NaN}',
    "bom": "\ufeff{}",
    "lone-surrogate": '{"question": "\\ud800"}',
    "null": "null",
    "list": "[]",
    "string": '"fee"',
    "not-utf8": b"\xff\xfe\x00q",
    "repeated-key": '{"question": "fee", "question": "' + "x" * 3000 + '"}',
}


@pytest.mark.parametrize("path", ["/api/ask", "/api/token/"])
def test_json_bodies(alice, fees, unthrottled, path):
    client = api_client_for(alice)
    each(JSON_BODIES, lambda body: assert_clean(client.post(path, body, content_type="application/json")))


def test_token_credentials(db, alice, unthrottled):
    def check(value):
        response = Client().post(
            "/api/token/",
            as_form({"username": value, "password": value}),
            content_type="application/x-www-form-urlencoded",
        )
        assert_clean(response, allowed=[400, 429])

    each(HOSTILE, check)


def test_document_list_filters(alice, fees, unthrottled):
    client = api_client_for(alice)

    def check(value):
        for field in ["collection", "status", "ids", "page", "page_size"]:
            assert_clean(client.get(f"/api/documents/?{field}={as_query(value)}"), allowed=[200, 400, 404])

    each(HOSTILE, check)


# -- uploads --------------------------------------------------------------
UPLOAD_NAMES = {
    "traversal": "../../../../etc/passwd.txt",
    "absolute": "/etc/cron.d/evil.txt",
    "windows": "..\\..\\evil.txt",
    "script": f"{SCRIPT}.txt",
    "rtl-override": "invoice\u202etxt.exe",
    "null": "note\x00.txt",
    "huge": "n" * 5000 + ".txt",
    "template": "{{ request }}.md",
    "dots": "....txt",
    "no-name": ".txt",
}


def stored_outside_media(settings) -> list:
    root = settings.MEDIA_ROOT.resolve()
    return [d.file.name for d in Document.objects.all() if root not in (root / d.file.name).resolve().parents]


def upload_of(name: str, tag: str = "") -> SimpleUploadedFile:
    # Distinct bytes each: the same bytes twice would be one document.
    return SimpleUploadedFile(name, f"The Gold card has an annual fee of 95 euros. {tag}".encode())


def test_an_api_upload_with_a_hostile_file_name(admin_user, unthrottled, settings):
    client = api_client_for(admin_user)

    def check(name):
        response = client.post("/api/documents/", {"file": upload_of(name, name)}, format="multipart")
        assert_clean(response, allowed=[202, 400])

    each(UPLOAD_NAMES, check)
    assert stored_outside_media(settings) == []


def test_an_api_upload_with_hostile_fields(admin_user, unthrottled):
    client = api_client_for(admin_user)

    def check(value):
        text = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")  # multipart carries text
        for field in ["collection", "title"]:
            response = client.post(
                "/api/documents/",
                {"file": upload_of("note.txt", f"{field}{text[:50]}"), field: text},
                format="multipart",
            )
            assert_clean(response, allowed=[202, 400])

    each(HOSTILE, check)


def test_an_admin_upload_with_a_hostile_file_name(client, admin_user, settings):
    client.force_login(admin_user)
    collection = Collection.objects.get_or_create(name=settings.RAG_DEFAULT_COLLECTION)[0]

    def check(name):
        response = client.post(
            "/admin/ingestion/document/add/",
            {"upload": [upload_of(name, name)], "collection": collection.pk, "title": SCRIPT},
        )
        assert_clean(response, allowed=[200, 302])

    each(UPLOAD_NAMES, check)
    assert stored_outside_media(settings) == []
    assert_clean(client.get("/admin/ingestion/document/"), allowed=[200])
    each(
        {d.original_filename: d.pk for d in Document.objects.all()},
        lambda pk: assert_clean(client.get(f"/admin/ingestion/document/{pk}/change/"), allowed=[200]),
    )


# -- the admin ------------------------------------------------------------
def test_the_admin_changelist_parameters(client, admin_user, fees):
    client.force_login(admin_user)

    def check(value):
        for query in ["q", "status__exact", "collection__id__exact", "o", "p", "e", "_changelist_filters"]:
            response = client.get(f"/admin/ingestion/document/?{query}={as_query(value)}")
            assert_clean(response, allowed=[200, 302, 400])
        for changelist in ["ingestion/collection", "auth/user", "auth/group", "generation/conversation"]:
            assert_clean(client.get(f"/admin/{changelist}/?q={as_query(value)}"), allowed=[200, 302, 400])

    each(HOSTILE, check)


def test_an_admin_changelist_refuses_a_nul_in_its_parameters(client, admin_user):
    # PostgreSQL refuses NUL in text: a search or filter holding one was a 500 there.
    client.force_login(admin_user)
    for query in ["q=a%00b", "status__exact=indexed%00", "o=1%00", "a%00b=1"]:
        assert client.get(f"/admin/ingestion/document/?{query}").status_code == 400
    assert client.get("/admin/auth/user/?q=%00").status_code == 400
    # Every page, not only the changelists that remembered to check (#26 L4: five answered 500).
    for path in [
        "/admin/generation/message/?content=a%00",
        "/admin/generation/guardrailevent/?text=%00",
        "/admin/generation/conversation/?title=%00",
        "/admin/retrieval/retrieverversion/?q=%00",
        "/admin/generation/generatorversion/?q=a%00",
    ]:
        response = client.get(path)
        assert response.status_code == 400 and b"NUL" in response.content, path
    api = client.get("/api/search?q=a%00")
    assert api.status_code == 400 and api.json() == {"detail": "A query parameter holds a NUL character."}


def test_an_admin_search_of_many_words_looks_for_the_first_ones(client, admin_user, fees):
    # Thousands of words (a URL as long as gunicorn takes) made a query too deep for SQLite: a 500.
    client.force_login(admin_user)
    for changelist in ["ingestion/document", "ingestion/collection", "auth/user", "auth/group"]:
        assert client.get(f"/admin/{changelist}/", {"q": "a " * 2000}).status_code == 200
    found = client.get("/admin/ingestion/document/", {"q": "fees " + "md " * 2000})
    assert found.status_code == 200 and "fees.md" in found.content.decode()


def test_admin_object_urls(client, admin_user):
    client.force_login(admin_user)

    def check(value):
        for path in (
            "/admin/ingestion/document/{}/change/",
            "/admin/ingestion/collection/{}/change/",
            "/admin/ingestion/document/{}/delete/",
        ):
            assert_clean(client.get(path.format(as_query(value))), allowed=[200, 302, 400, 404])

    each(HOSTILE, check)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_sign_in_forms(db, path):
    def check(value):
        client = Client()
        client.get(path)
        response = client.post(
            path,
            as_form({"username": value, "password": value, "next": value}),
            content_type="application/x-www-form-urlencoded",
        )
        assert_clean(response, allowed=[200, 302, 400, 403, 429])

    each(HOSTILE, check)
