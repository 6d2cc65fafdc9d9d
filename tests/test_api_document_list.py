"""GET /api/documents/: the documents the caller may read, a page at a time,
filtered by collection, status and ids; never another user's private ones."""

import pytest

from ingestion.models import Collection, Document
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def make(collection, title, status="indexed"):
    return Document.objects.create(
        collection=collection,
        title=title,
        sha256=title.ljust(64, "0")[:64],
        original_filename=f"{title}.md",
        file=f"documents/{title}.md",
        status=status,
    )


@pytest.fixture
def shelves(alice, bob):
    public = Collection.objects.create(name="manuals")
    mine = Collection.objects.create(name="alice-notes", is_public=False, owner=alice)
    theirs = Collection.objects.create(name="bob-notes", is_public=False, owner=bob)
    return {
        "fees": make(public, "fees"),
        "draft": make(public, "draft", status="failed"),
        "diary": make(mine, "diary", status="pending"),
        "secret": make(theirs, "secret"),
    }


def titles(response):
    return [row["title"] for row in response.json()["results"]]


def test_it_lists_what_the_caller_may_read_newest_first(alice, shelves):
    response = api_client_for(alice).get("/api/documents/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and titles(response) == ["diary", "draft", "fees"]
    row = body["results"][0]
    assert row["status"] == "pending" and row["collection"] == "alice-notes" and row["created"]
    assert row["url"].endswith(f"/api/documents/{shelves['diary'].pk}/")
    assert "secret" not in titles(api_client_for(alice).get("/api/documents/", {"page_size": 200}))


def test_it_pages_through_the_list(alice, shelves):
    client = api_client_for(alice)
    first = client.get("/api/documents/", {"page_size": 2}).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["previous"] is None
    second = client.get(first["next"]).json()
    assert [row["title"] for row in second["results"]] == ["fees"] and second["next"] is None


def test_it_filters_by_collection_status_and_ids(alice, shelves):
    client = api_client_for(alice)
    assert titles(client.get("/api/documents/", {"collection": "manuals"})) == ["draft", "fees"]
    assert titles(client.get("/api/documents/", {"status": "failed"})) == ["draft"]
    assert titles(client.get("/api/documents/", {"collection": "manuals", "status": "indexed"})) == ["fees"]
    ids = f"{shelves['fees'].pk},{shelves['secret'].pk}"
    assert titles(client.get("/api/documents/", {"ids": ids})) == ["fees"]  # another user's id is left out


@pytest.mark.parametrize(
    "params, field",
    [
        ({"collection": "bob-notes"}, "collection"),  # exists, but not alice's to read: told unknown
        ({"collection": "nowhere"}, "collection"),
        ({"status": "lost"}, "status"),
        ({"ids": "1,two"}, "ids"),
    ],
)
def test_it_refuses_bad_filters(alice, shelves, params, field):
    response = api_client_for(alice).get("/api/documents/", params)
    assert response.status_code == 400 and field in response.json()


def test_it_needs_a_signed_in_caller(shelves):
    assert api_client_for(None).get("/api/documents/").status_code == 401


def test_the_list_is_in_the_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/documents/"]["get"]
    assert {"collection", "status", "ids", "page", "page_size"} <= {p["name"] for p in operation["parameters"]}


def test_the_list_answers_only_get_and_post(admin_user, shelves):
    client = api_client_for(admin_user)
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)("/api/documents/").status_code == 405, method
    assert Document.objects.count() == 4
