"""REST doors: search, ask, documents, schema; auth and access control."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.models import Citation, GuardrailEvent, Message
from ingestion import services
from ingestion.models import Chunk, Collection, Document
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def test_it_refuses_anonymous_calls(handbook):
    client = api_client_for(None)
    assert client.get("/api/search", {"q": "annual fee"}).status_code == 401
    assert client.post("/api/ask", {"question": "annual fee?"}, format="json").status_code == 401
    assert client.get(f"/api/documents/{handbook.pk}/").status_code == 401
    assert client.delete(f"/api/documents/{handbook.pk}/").status_code == 401
    assert Document.objects.filter(pk=handbook.pk).exists()


def test_it_searches_with_a_token(alice, handbook):
    response = api_client_for(alice).get("/api/search", {"q": "What does the Gold card cost per year?", "k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["k"] == 2 and len(body["results"]) == 2
    top = body["results"][0]
    assert set(top) >= {
        "score",
        "rank",
        "document_id",
        "title",
        "filename",
        "page",
        "text",
        "chunk_id",
        "heading",
        "char_start",
        "char_end",
    }
    assert top["document_id"] == handbook.pk
    assert top["filename"] == "handbook.pdf"
    assert top["title"] == "Card Handbook"
    assert top["page"] == 2 and "95 euros" in top["text"]
    assert top["rank"] == 1 and top["score"] >= body["results"][1]["score"]


def test_it_searches_with_a_session(client, alice, handbook):
    client.force_login(alice)
    response = client.get("/api/search", {"q": "lounge access"})
    assert response.status_code == 200
    assert response.json()["results"][0]["page"] == 3


@pytest.mark.parametrize(
    "params, message",
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "fee", "k": 0}, "k"),
        ({"q": "fee", "k": 1000}, "k must be between"),
        ({"q": "fee", "k": "many"}, "k"),
        ({"q": "fee", "collection": "no-such-collection"}, "Unknown collection"),
    ],
)
def test_it_rejects_bad_search_parameters(alice, handbook, params, message):
    response = api_client_for(alice).get("/api/search", params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_it_hides_private_collections_from_other_users(alice, bob, admin_user, handbook, private_note):
    query = {"q": "Project Falcon Diamond card launch", "k": 10}
    bob_results = api_client_for(bob).get("/api/search", query).json()["results"]
    assert private_note.pk not in {r["document_id"] for r in bob_results}
    assert all("Falcon" not in r["text"] for r in bob_results)
    # Not even by naming the collection.
    denied = api_client_for(bob).get("/api/search", {**query, "collection": "alice-private"})
    assert denied.status_code == 400
    assert api_client_for(bob).get(f"/api/documents/{private_note.pk}/").status_code == 404
    for reader in (alice, admin_user):
        results = api_client_for(reader).get("/api/search", query).json()["results"]
        assert results[0]["document_id"] == private_note.pk
    # Staff status reads no private collection (a superuser reads all); membership does.
    carol = get_user_model().objects.create_user("carol", password="carol-password-1", is_staff=True)
    carol_results = api_client_for(carol).get("/api/search", query).json()["results"]
    assert private_note.pk not in {r["document_id"] for r in carol_results}
    assert api_client_for(carol).get("/api/search", {**query, "collection": "alice-private"}).status_code == 400
    private_note.collection.members.add(carol)
    assert api_client_for(carol).get("/api/search", query).json()["results"][0]["document_id"] == private_note.pk


def test_it_limits_search_to_a_collection(alice, handbook, private_note):
    results = (
        api_client_for(alice)
        .get("/api/search", {"q": "annual fee", "collection": "alice-private", "k": 5})
        .json()["results"]
    )
    assert results and {r["collection"] for r in results} == {"alice-private"}


def test_it_answers_with_citations_that_hold_the_answer(alice, handbook):
    response = api_client_for(alice).post(
        "/api/ask", {"question": "What is the annual fee of the Gold card?"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["found"] is True
    assert body["guardrail"]["intervened"] is False
    assert "[1]" in body["answer"]
    first = body["citations"][0]
    assert first["number"] == 1
    assert first["document_id"] == handbook.pk and first["page"] == 2
    assert "95 euros" in Chunk.objects.get(pk=first["chunk_id"]).text
    start, end = first["spans"][0]
    assert "[1]" in body["answer"][start:end]
    message = Message.objects.get(pk=body["message_id"])
    assert message.conversation.user == alice
    assert Citation.objects.filter(message=message, chunk_id=first["chunk_id"]).exists()
    assert set(body["timings"]) >= {"retrieval", "generation", "guardrail_question", "guardrail_answer", "total"}


def test_it_continues_only_its_own_conversations(alice, bob, handbook):
    first = (
        api_client_for(alice)
        .post("/api/ask", {"question": "What is the annual fee of the Gold card?"}, format="json")
        .json()
    )
    again = api_client_for(alice).post(
        "/api/ask",
        {"question": "Does the Platinum card include lounge access?", "conversation_id": first["conversation_id"]},
        format="json",
    )
    assert again.status_code == 200 and again.json()["conversation_id"] == first["conversation_id"]
    stolen = api_client_for(bob).post(
        "/api/ask", {"question": "Anything?", "conversation_id": first["conversation_id"]}, format="json"
    )
    assert stolen.status_code == 404
    assert Message.objects.filter(conversation_id=first["conversation_id"]).count() == 4


def test_it_says_when_the_documents_do_not_answer(alice, handbook, settings):
    settings.RAG_MIN_RELEVANCE = 0.99  # nothing is relevant enough
    body = api_client_for(alice).post("/api/ask", {"question": "What is the capital of Peru?"}, format="json").json()
    assert body["found"] is False and body["kind"] == "not_found"
    assert "do not contain" in body["answer"]
    assert body["citations"] == [] and body["passages"]  # the closest passages are offered instead


def test_it_refuses_a_toxic_question_and_records_it(alice, handbook):
    body = (
        api_client_for(alice)
        .post("/api/ask", {"question": "you stupid fucking idiot, what is the fee"}, format="json")
        .json()
    )
    assert body["guardrail"]["intervened"] is True and body["guardrail"]["direction"] == "question"
    assert body["citations"] == []
    event = GuardrailEvent.objects.get()
    assert event.user == alice and event.direction == "question" and event.score >= 0.8


def test_it_rejects_an_empty_question(alice):
    assert api_client_for(alice).post("/api/ask", {"question": ""}, format="json").status_code == 400


def test_only_staff_upload_and_delete(alice, admin_user, handbook, handbook_pdf):
    upload = SimpleUploadedFile("notes.txt", b"Some notes about cards.")
    assert api_client_for(alice).post("/api/documents/", {"file": upload}, format="multipart").status_code == 403
    assert api_client_for(alice).delete(f"/api/documents/{handbook.pk}/").status_code == 403
    assert Document.objects.filter(pk=handbook.pk).exists()
    assert api_client_for(alice).get(f"/api/documents/{handbook.pk}/").status_code == 200


@pytest.mark.slow  # the real embedder
def test_it_accepts_an_upload_and_reports_its_status(admin_user):
    Collection.objects.create(name="team-notes")  # uploads never create one (tests/test_api_input.py)
    client = api_client_for(admin_user)
    upload = SimpleUploadedFile("../../etc/notes.md", b"# Notes\n\nThe Gold card fee is 95 euros.\n")
    response = client.post("/api/documents/", {"file": upload, "collection": "team-notes"}, format="multipart")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["collection"] == "team-notes"
    assert body["original_filename"] == "notes.md"
    assert response["Location"].endswith(f"/api/documents/{body['id']}/")
    services.process_document(body["id"])
    detail = client.get(f"/api/documents/{body['id']}/").json()
    assert detail["status"] == "indexed" and detail["chunks_total"] == detail["chunks_embedded"] >= 1
    # The same bytes again are the same document.
    again = client.post(
        "/api/documents/",
        {
            "file": SimpleUploadedFile("copy.md", b"# Notes\n\nThe Gold card fee is 95 euros.\n"),
            "collection": "team-notes",
        },
        format="multipart",
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]


def test_it_refuses_an_upload_over_the_size_limit(admin_user, settings):
    settings.RAG_MAX_UPLOAD_MB = 1
    big = SimpleUploadedFile("big.txt", b"word " * (1024 * 1024 // 5 + 10))
    response = api_client_for(admin_user).post("/api/documents/", {"file": big}, format="multipart")
    assert response.status_code == 400 and "1 MB limit" in response.content.decode()
    assert not Document.objects.exists()


def test_bad_files_fail_alone_with_a_reason(admin_user, handbook, handbook_pdf):
    client = api_client_for(admin_user)
    bad = {
        "empty.txt": (b"", "empty"),
        "corrupt.pdf": (handbook_pdf.read_bytes()[:300], "PDF"),
    }  # an unsupported type is refused at upload (tests/test_admin_upload.py)
    ids = {}
    for name, (data, _) in bad.items():
        response = client.post("/api/documents/", {"file": SimpleUploadedFile(name, data)}, format="multipart")
        assert response.status_code == 202
        ids[name] = response.json()["id"]
        services.process_document(ids[name])
    for name, (_, reason) in bad.items():
        detail = client.get(f"/api/documents/{ids[name]}/").json()
        assert detail["status"] == "failed", name
        assert reason in detail["error"], (name, detail["error"])
    handbook.refresh_from_db()
    assert handbook.status == "indexed"
    assert client.get("/api/search", {"q": "Gold card annual fee"}).json()["results"][0]["document_id"] == handbook.pk


def test_delete_removes_chunks_and_vectors(admin_user, handbook, django_capture_on_commit_callbacks, eager_tasks):
    from retrieval.stores import get_store

    chunk_ids = set(handbook.chunks.values_list("pk", flat=True))
    assert chunk_ids <= set(get_store().current().ids().tolist())
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(admin_user).delete(f"/api/documents/{handbook.pk}/")
    assert response.status_code == 204
    assert not Chunk.objects.filter(pk__in=chunk_ids).exists()
    assert not chunk_ids & set(get_store().current().ids().tolist())


def test_it_serves_the_openapi_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/search", "/api/ask", "/api/documents/", "/api/documents/{id}/"} <= set(schema["paths"])


def test_staff_cancel_and_reindex_over_the_api(admin_user, alice, handbook):
    client = api_client_for(admin_user)
    assert client.post(f"/api/documents/{handbook.pk}/cancel/").status_code == 409  # already indexed
    assert api_client_for(alice).post(f"/api/documents/{handbook.pk}/reindex/").status_code == 403
    response = client.post(f"/api/documents/{handbook.pk}/reindex/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    cancelled = client.post(f"/api/documents/{handbook.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    "path, methods",
    [
        ("/api/documents/{pk}/", ["put", "patch", "post"]),
        ("/api/documents/{pk}/cancel/", ["get", "put", "patch", "delete"]),
        ("/api/documents/{pk}/reindex/", ["get", "put", "patch", "delete"]),
        ("/api/ask", ["get", "put", "patch", "delete"]),
    ],
)
def test_each_endpoint_answers_only_its_own_methods(admin_user, handbook, path, methods):
    client = api_client_for(admin_user)
    for method in methods:
        response = getattr(client, method)(path.format(pk=handbook.pk))
        assert response.status_code == 405, (method, path, response.status_code)
    assert Document.objects.filter(pk=handbook.pk).exists()  # DELETE on .../cancel/ once deleted it


def test_it_pages_and_filters_search_results(alice, handbook, private_note, tmp_path):
    from datetime import date, timedelta

    from tests.conftest import ingest_path

    notes = tmp_path / "notes.md"
    notes.write_text(
        "# Notes\n\nThe Gold card annual fee is reviewed every spring.\n\nLounge access is a Platinum perk.\n"
    )
    other = ingest_path(notes)
    client = api_client_for(alice)
    first = client.get("/api/search", {"q": "annual fee", "k": 2}).json()
    assert first["offset"] == 0 and len(first["results"]) == 2 and "offset=2" in first["next"]
    second = client.get(first["next"]).json()
    assert [r["rank"] for r in second["results"]] == [3, 4][: len(second["results"])]
    seen = {r["chunk_id"] for r in first["results"]}
    assert not seen & {r["chunk_id"] for r in second["results"]}  # no repeats across pages
    only = client.get("/api/search", {"q": "annual fee", "document": other.pk, "k": 5}).json()["results"]
    assert only and {r["document_id"] for r in only} == {other.pk}
    today = date.today()
    assert (
        client.get("/api/search", {"q": "annual fee", "since": str(today + timedelta(days=1))}).json()["results"] == []
    )
    assert client.get("/api/search", {"q": "annual fee", "until": str(today)}).json()["results"]
    assert client.get("/api/search", {"q": "fee", "since": "2026-02-30"}).status_code == 400
    assert client.get("/api/search", {"q": "fee", "offset": -1}).status_code == 400
    bad_range = client.get("/api/search", {"q": "fee", "since": str(today), "until": str(today - timedelta(days=1))})
    assert bad_range.status_code == 400 and "since must not be after until" in bad_range.content.decode()


def test_it_searches_by_document(alice, handbook, tmp_path):
    from tests.conftest import ingest_path

    other = tmp_path / "fees-leaflet.md"
    other.write_text("# Card fees\n\nEvery card fee is listed in the handbook; the Gold card fee is 95 euros.\n")
    ingest_path(other)
    client = api_client_for(alice)
    body = client.get("/api/search", {"q": "Gold card annual fee", "k": 5, "by": "document"}).json()
    documents = [r["document_id"] for r in body["results"]]
    assert len(documents) == len(set(documents)) == 2 and body["next"] is None
    handbook_result = next(r for r in body["results"] if r["document_id"] == handbook.pk)
    assert 1 <= len(handbook_result["passages"]) <= 2  # the handbook has more passages about fees
    assert all(p["document_id"] == handbook.pk for p in handbook_result["passages"])
    assert set(handbook_result["scores"]) == {"dense"}  # nothing that depends on corpus-wide statistics
    one = client.get("/api/search", {"q": "Gold card annual fee", "by": "document", "per_document": 0}).json()
    assert all(r["passages"] == [] for r in one["results"])
    assert client.get("/api/search", {"q": "fee", "by": "document", "offset": 5}).status_code == 400
    assert client.get("/api/search", {"q": "fee", "by": "chapter"}).status_code == 400
    plain = client.get("/api/search", {"q": "Gold card annual fee", "k": 5}).json()
    assert "passages" not in plain["results"][0]  # by passage, as before
