"""Bad input to the API is the caller's error (4xx), checked before anything
is stored: collections that cannot be read or written, ids past any key."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.models import Conversation
from ingestion.models import Collection, Document
from tests.conftest import api_client_for

PAST_ANY_ID = 1180591620717411303424  # 2**70: overflowed the database driver (500)


@pytest.fixture
def private_collection(alice):
    return Collection.objects.create(name="alice-private", is_public=False, owner=alice)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", ["no-such-collection", "alice-private"])
def test_ask_refuses_a_collection_the_user_cannot_read_and_stores_nothing(bob, private_collection, name, stream):
    response = api_client_for(bob).post(
        "/api/ask", {"question": "What is the annual fee?", "collection": [name], "stream": stream}, format="json"
    )
    assert response.status_code == 400
    assert "Unknown collection" in str(response.json())
    assert not Conversation.objects.exists()


@pytest.mark.slow  # the real guardrail and embedder
def test_ask_in_a_readable_collection_still_answers(alice, private_collection):
    response = api_client_for(alice).post(
        "/api/ask", {"question": "What is the annual fee?", "collection": ["alice-private"]}, format="json"
    )
    assert response.status_code == 200 and response.json()["kind"] == "not_found"
    assert Conversation.objects.filter(user=alice).count() == 1


def test_ids_past_any_key_are_a_400(alice, handbook):
    client = api_client_for(alice)
    assert client.get("/api/search", {"q": "annual fee", "document": PAST_ANY_ID}).status_code == 400
    assert client.get("/api/search", {"q": "annual fee", "document": handbook.pk}).status_code == 200
    response = client.post(
        "/api/ask", {"question": "What is the annual fee?", "conversation_id": PAST_ANY_ID}, format="json"
    )
    assert response.status_code == 400 and not Conversation.objects.exists()


def test_an_upload_to_an_unknown_collection_is_refused_not_created(admin_user):
    Collection.objects.create(name="manuals")
    client = api_client_for(admin_user)
    upload = SimpleUploadedFile("note.txt", b"The Gold card has an annual fee of 95 euros.")
    response = client.post("/api/documents/", {"file": upload, "collection": "typo-manuals"}, format="multipart")
    assert response.status_code == 400
    message = response.json()["collection"][0]
    assert "typo-manuals" in message and "manuals" in message
    assert not Collection.objects.filter(name="typo-manuals").exists() and not Document.objects.exists()


def test_an_upload_goes_to_an_existing_collection_or_the_default_one(admin_user, settings):
    Collection.objects.create(name="manuals")
    client = api_client_for(admin_user)
    named = client.post(
        "/api/documents/", {"file": SimpleUploadedFile("a.txt", b"Alpha."), "collection": "manuals"}, format="multipart"
    )
    unnamed = client.post("/api/documents/", {"file": SimpleUploadedFile("b.txt", b"Beta.")}, format="multipart")
    assert named.status_code == unnamed.status_code == 202
    assert named.json()["collection"] == "manuals"
    assert unnamed.json()["collection"] == settings.RAG_DEFAULT_COLLECTION  # created on first use, as before
