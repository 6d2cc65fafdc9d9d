"""Deleting a document withdraws what stored answers quoted from it (issue #12):
before, an old conversation still showed the deleted document's passage to
whoever had it cited."""

from io import BytesIO

import pytest

from generation.models import Citation, Conversation, Message
from generation.withdrawal import WITHDRAWN_ANSWER
from ingestion import services as ingestion
from ingestion.models import Document

pytestmark = pytest.mark.django_db
SECRET = "Project Falcon launches the Diamond card on 3 March with a 400 euro annual fee."


def stored_answers(user, document, other):
    """A quoted answer and a generated one citing `document`, and a not-found
    answer listing passages of `document` and of `other`."""
    conversation = Conversation.objects.create(user=user, title="Falcon")
    quoted = Message.objects.create(
        conversation=conversation, role="assistant", kind="quoted", content=f"“{SECRET}” [1]"
    )
    generated = Message.objects.create(
        conversation=conversation,
        role="assistant",
        kind="generated",
        content="It costs 400 euros [1].",
        generated="It costs 400 euros [1].",
    )
    for message in (quoted, generated):
        Citation.objects.create(
            message=message,
            number=1,
            document=document,
            title="Falcon",
            filename="falcon.md",
            quote=SECRET,
            highlight=[[0, len(SECRET)]],
        )
    passages = [{"document_id": document.pk, "text": SECRET}, {"document_id": other.pk, "text": "Gold: 95 euros."}]
    not_found = Message.objects.create(
        conversation=conversation,
        role="assistant",
        kind="not_found",
        found=False,
        content="The documents do not say.",
        passages=passages,
    )
    return conversation, quoted, generated, not_found


def upload(text: str, name: str) -> Document:
    return ingestion.add_document(BytesIO(text.encode()), name, collection=ingestion.get_collection())[0]


def test_deleting_a_document_withdraws_its_quotes_everywhere(alice, client):
    document, other = upload(SECRET, "falcon.md"), upload("Gold: 95 euros.", "gold.md")
    conversation, quoted, generated, not_found = stored_answers(alice, document, other)
    Document.objects.filter(pk=document.pk).delete()  # a queryset delete, as the admin's bulk action does

    citations = Citation.objects.filter(message__conversation=conversation)
    assert citations.count() == 2 and all(c.withdrawn and c.quote == "" and c.document_id is None for c in citations)
    quoted.refresh_from_db(), generated.refresh_from_db(), not_found.refresh_from_db()
    assert quoted.content == WITHDRAWN_ANSWER
    assert generated.content == "It costs 400 euros [1]." and generated.generated == ""
    assert [p["document_id"] for p in not_found.passages] == [other.pk]

    client.force_login(alice)
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert "Diamond" not in page and "withdrawn" in page


def test_a_passage_of_a_document_whose_id_starts_with_the_same_digits_stays(alice):
    from generation.withdrawal import withdraw_document

    conversation = Conversation.objects.create(user=alice)
    passages = [{"document_id": 50, "text": "kept"}, {"document_id": 5, "text": "withdrawn"}]
    message = Message.objects.create(conversation=conversation, role="assistant", kind="not_found", passages=passages)
    withdraw_document(5)
    message.refresh_from_db()
    assert message.passages == [{"document_id": 50, "text": "kept"}]
