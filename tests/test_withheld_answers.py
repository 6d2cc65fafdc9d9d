"""A member removed from a private collection no longer reads its quotes in
the answers they stored while a member (issue #26, L2): the answer and its
sources are withheld as a deleted document's are, and the closest passages
of its documents are left out; the others' answers are untouched."""

import pytest

from chat.services import WITHHELD_ANSWER
from generation.models import Citation, Conversation, Message
from ingestion.models import Collection, Document

pytestmark = pytest.mark.django_db
SECRET = "We buy Contoso on 3 March for 40 million euros."


@pytest.fixture
def stored(alice, bob):
    plans = Collection.objects.create(name="bob-plans", is_public=False, owner=bob)
    plans.members.add(alice)
    manuals = Collection.objects.create(name="manuals", is_public=True)
    secret = Document.objects.create(collection=plans, title="Plans", original_filename="plans.md", sha256="a" * 64)
    public = Document.objects.create(collection=manuals, title="Fees", original_filename="fees.md", sha256="b" * 64)
    conversation = Conversation.objects.create(user=alice, title="plans")
    quoted = Message.objects.create(
        conversation=conversation, role="assistant", kind="quoted", content=f"“{SECRET}” [1]"
    )
    Citation.objects.create(message=quoted, number=1, document=secret, title="Plans", filename="plans.md", quote=SECRET)
    passages = [
        {"document_id": secret.pk, "text": SECRET, "title": "Plans"},
        {"document_id": public.pk, "text": "Gold: 95 euros.", "title": "Fees"},
    ]
    not_found = Message.objects.create(
        conversation=conversation,
        role="assistant",
        kind="not_found",
        found=False,
        content="Not found.",
        passages=passages,
    )
    return plans, conversation, quoted, not_found


def test_a_removed_member_no_longer_reads_the_collections_quotes_in_stored_answers(client, alice, stored):
    plans, conversation, quoted, not_found = stored
    client.force_login(alice)
    assert SECRET in client.get(f"/c/{conversation.pk}/").content.decode()  # a member reads it
    plans.members.remove(alice)
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert SECRET not in page and "Contoso" not in page and WITHHELD_ANSWER in page
    message = client.get(f"/c/{conversation.pk}/m/{quoted.pk}/").json()
    assert message["content"] == WITHHELD_ANSWER and message["citations"] == []
    listed = client.get(f"/c/{conversation.pk}/m/{not_found.pk}/").json()
    assert [p["title"] for p in listed["passages"]] == ["Fees"]
    assert Message.objects.get(pk=quoted.pk).content == f"“{SECRET}” [1]"  # stored as it was: a member again reads it
