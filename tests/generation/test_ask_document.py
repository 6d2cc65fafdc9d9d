""" "Ask this document": a question limited to documents (the API's
`document` field) looks only there, says so when it finds nothing, and a
document the asker may not read finds nothing, as an absent one would."""

import pytest

from generation import services
from ingestion.models import Collection
from tests.conftest import api_client_for, ingest_path

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # real models: the classifier and the embedder


@pytest.fixture
def lounge_guide(tmp_path):
    path = tmp_path / "lounge-guide.md"
    path.write_text("# Lounge guide\n\nPlatinum card holders may use the airport lounges free of charge.\n")
    return ingest_path(path)


def test_a_question_about_one_document_looks_only_there(alice, handbook, lounge_guide):
    fee = "What is the annual fee of the Gold card?"
    assert services.ask(fee, user=alice).found
    narrowed = services.ask(fee, user=alice, documents=[lounge_guide.pk])
    assert not narrowed.found and {p["document_id"] for p in narrowed.passages} <= {lounge_guide.pk}
    assert narrowed.notice == "Searched only in “Lounge guide”."
    inside = services.ask(fee, user=alice, documents=[handbook.pk])
    assert inside.found and {c["document_id"] for c in inside.citations} == {handbook.pk}


def test_a_document_the_asker_may_not_read_finds_nothing(alice, bob, tmp_path):
    Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    path = tmp_path / "falcon.md"
    path.write_text("# Project Falcon\n\nProject Falcon launches the Diamond card on 3 March.\n")
    secret = ingest_path(path, "alice-private", owner=alice)
    response = api_client_for(bob).post(
        "/api/ask", {"question": "When does Project Falcon launch?", "document": [secret.pk]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert not body["found"] and body["passages"] == [] and "Falcon" not in body["notice"]
    assert api_client_for(bob).post("/api/ask", {"question": "x", "document": [0]}, format="json").status_code == 400


def test_an_evaluation_retrieves_as_many_passages_as_it_is_told(handbook, monkeypatch, settings):
    """evaluate_answers' k reaches the answer path as an option (no settings are overridden)."""
    import json

    from generation import evaluation

    line = {"id": "q1", "question": "What is the annual fee of the Gold card?", "answers": ["95 euros"]}
    questions = evaluation.parse_questions([json.dumps({**line, "document": "handbook.pdf", "answerable": True})])
    asked, search = [], services.search
    monkeypatch.setattr(
        services, "search", lambda *args, **kwargs: asked.append(kwargs["k"]) or search(*args, **kwargs)
    )
    report = services.evaluate_answers(questions, k=2)
    assert report["summary"]["holds_fact"] == 1.0
    assert set(asked) == {2}
    asked.clear()
    services.evaluate_answers(questions)
    assert set(asked) == {settings.RAG_ANSWER_PASSAGES}
