"""Askers' feedback (issue #15, item 5): helpful / not helpful on answers and
on sources, sources opened, stored and shown again, and the question-passage
pairs it makes for the retriever's fine-tuning, within what each asker may read."""

import json

import pytest
from django.urls import reverse

from generation import feedback
from generation.models import Citation, Conversation, Message
from ingestion.models import Chunk, Collection
from retrieval.finetune import real
from retrieval.finetune.data import Passage
from tests.test_chat_ui import make_document

pytestmark = pytest.mark.django_db


@pytest.fixture
def asked(alice):
    """Alice asked two questions; each answer cites passages of a public and of her private manual."""
    public = Collection.objects.create(name="manuals", is_public=True)
    private = Collection.objects.create(name="alice-notes", owner=alice)
    chunks = []
    for collection, name in ((public, "handbook.pdf"), (private, "notes.pdf")):
        document = make_document(collection, name=name, title=name)
        for ordinal in range(2):
            chunks.append(
                Chunk.objects.create(
                    document=document, ordinal=ordinal, text=f"{name} passage {ordinal}", char_start=0, char_end=20
                )
            )
    conversation = Conversation.objects.create(user=alice, title="Fees")
    answers = []
    for question, cited in (("What is the Gold card fee?", chunks[:2]), ("And my own limit?", chunks[2:])):
        Message.objects.create(conversation=conversation, role="user", content=question)
        answer = Message.objects.create(conversation=conversation, role="assistant", kind="quoted", content="… [1] [2]")
        for number, chunk in enumerate(cited, start=1):
            Citation.objects.create(
                message=answer,
                number=number,
                chunk=chunk,
                document=chunk.document,
                title=chunk.document.title,
                filename=chunk.document.original_filename,
                quote=chunk.text,
            )
        answers.append(answer)
    return conversation, answers, chunks


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def test_an_asker_marks_an_answer_and_a_source_and_sees_it_after_a_reload(client, alice, asked):
    conversation, (first, _second), _chunks = asked
    client.force_login(alice)
    answer_url = reverse("answer-feedback", args=[conversation.pk, first.pk])
    assert post(client, answer_url, {"helpful": True}).json() == {"helpful": True}
    source = first.citations.get(number=2)
    assert post(client, reverse("citation-feedback", args=[source.pk]), {"helpful": False}).json() == {"helpful": False}
    assert client.post(reverse("citation-opened", args=[source.pk])).json() == {"opened": True}

    shown = client.get(reverse("conversation-message", args=[conversation.pk, first.pk])).json()
    assert shown["helpful"] is True and shown["feedback_url"] == answer_url
    assert [c["helpful"] for c in shown["citations"]] == [None, False]
    assert shown["citations"][1]["feedback_url"] == reverse("citation-feedback", args=[source.pk])
    source.refresh_from_db()
    opened = source.opened
    assert opened is not None
    client.post(reverse("citation-opened", args=[source.pk]))  # the first opening is kept
    source.refresh_from_db()
    assert source.opened == opened
    assert post(client, answer_url, {"helpful": None}).json() == {"helpful": None}  # taken back
    assert Message.objects.get(pk=first.pk).helpful is None


def test_feedback_is_the_askers_own_and_well_formed(client, alice, bob, asked):
    conversation, (first, _second), _chunks = asked
    answer_url = reverse("answer-feedback", args=[conversation.pk, first.pk])
    source_url = reverse("citation-feedback", args=[first.citations.get(number=1).pk])
    assert post(client, answer_url, {"helpful": True}).status_code == 302  # to the login page
    client.force_login(bob)
    for url in (answer_url, source_url, reverse("citation-opened", args=[first.citations.get(number=1).pk])):
        assert post(client, url, {"helpful": True}).status_code == 404
    question = Message.objects.get(conversation=conversation, content__startswith="What")
    client.force_login(alice)
    assert (
        post(client, reverse("answer-feedback", args=[conversation.pk, question.pk]), {"helpful": True}).status_code
        == 404
    )
    for body in ({"helpful": "yes"}, {"helpful": 1}, ["helpful"]):
        response = post(client, answer_url, body)
        assert response.status_code == 400 and "helpful" in response.json()["detail"]
    assert client.post(answer_url, b"{not json", content_type="application/json").status_code == 400
    assert client.get(answer_url).status_code == 405
    assert Message.objects.get(pk=first.pk).helpful is None


def test_helpful_sources_become_labelled_queries_within_what_the_asker_may_read(alice, asked):
    _conversation, (first, second), chunks = asked
    assert feedback.labelled_queries() == []  # nothing said yet: no pairs
    feedback.mark_answer(alice, first.conversation_id, first.pk, True)  # both sources count ...
    feedback.mark_citation(alice, first.citations.get(number=2).pk, False)  # ... but the one marked unhelpful
    feedback.mark_opened(alice, second.citations.get(number=1).pk)  # opened: worth reading
    found = {q.query: q for q in feedback.labelled_queries()}
    assert set(found) == {"What is the Gold card fee?", "And my own limit?"}
    assert found["What is the Gold card fee?"].relevant == {chunks[0].pk}
    assert found["And my own limit?"].relevant == {chunks[2].pk} and found["And my own limit?"].unit == "chunk"

    # Alice's private collection is given away: her pairs no longer name its passages.
    Collection.objects.filter(name="alice-notes").update(owner=None, is_public=False)
    assert {q.query for q in feedback.labelled_queries()} == {"What is the Gold card fee?"}


def test_feedback_trains_on_training_documents_and_judges_on_held_out_ones(alice, asked):
    _conversation, (first, second), chunks = asked
    feedback.mark_citation(alice, first.citations.get(number=1).pk, True)
    feedback.mark_citation(alice, second.citations.get(number=1).pk, True)
    queries = feedback.labelled_queries()
    passages = [Passage(c.pk, c.document_id, "", c.text) for c in chunks]
    train, heldout = passages[:2], passages[2:]
    pairs = real.feedback_pairs(queries, train)
    assert [(p.query, p.chunk_id, p.method) for p in pairs] == [
        ("What is the Gold card fee?", chunks[0].pk, "feedback")
    ]
    judged = real.heldout_queries(queries, heldout, source="feedback")
    assert [(q.query, q.relevant, q.source) for q in judged] == [("And my own limit?", {chunks[2].pk}, "feedback")]
