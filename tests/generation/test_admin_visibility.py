"""The admin shows staff only what they may read (issue #26, M3 and L3): a
message citing a private collection's document is hidden from staff who may
view messages but not read that collection, and the documents' collection
filter names only readable collections."""

import pytest
from django.contrib.auth.models import Permission

from generation.models import Citation, Conversation, Message
from ingestion.models import Collection, Document

pytestmark = pytest.mark.django_db


def document_in(collection, name):
    return Document.objects.create(
        collection=collection, title=name, original_filename=f"{name}.md", sha256=name.ljust(64, "0")[:64]
    )


@pytest.fixture
def answers(alice, bob):
    public = Collection.objects.create(name="manuals", is_public=True)
    private = Collection.objects.create(name="bob-merger-plans", is_public=False, owner=bob)
    conversation = Conversation.objects.create(user=bob, title="plans")
    shown = {}
    for name, collection, quote in [
        ("fees", public, "The Gold card costs 95 euros."),
        ("merger", private, "We buy Contoso on 3 March for 40 million euros."),
    ]:
        message = Message.objects.create(
            conversation=conversation, role="assistant", kind="quoted", content=f"“{quote}” [1]"
        )
        Citation.objects.create(
            message=message,
            number=1,
            document=document_in(collection, name),
            title=name,
            filename=f"{name}.md",
            quote=quote,
        )
        shown[name] = message
    return shown


def staff_viewer(user, *codenames):
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_staff_see_only_the_messages_whose_sources_they_may_read(client, alice, answers):
    client.force_login(staff_viewer(alice, "view_message", "view_conversation"))
    page = client.get("/admin/generation/message/").content.decode()
    assert "95 euros" in page and "Contoso" not in page
    hidden = client.get(f"/admin/generation/message/{answers['merger'].pk}/change/")
    assert hidden.status_code == 302 and "Contoso" not in hidden.content.decode()  # "does not exist"
    conversation = client.get(f"/admin/generation/conversation/{answers['merger'].conversation_id}/change/")
    assert conversation.status_code == 200
    assert "95 euros" in conversation.content.decode() and "Contoso" not in conversation.content.decode()


def test_the_collection_owner_and_a_superuser_see_every_message(client, bob, admin_user, answers):
    client.force_login(staff_viewer(bob, "view_message"))
    assert "Contoso" in client.get("/admin/generation/message/").content.decode()
    client.force_login(admin_user)
    assert "Contoso" in client.get("/admin/generation/message/").content.decode()


def test_the_document_list_names_only_collections_the_user_may_read(client, alice, answers):
    client.force_login(staff_viewer(alice, "view_document"))
    page = client.get("/admin/ingestion/document/").content.decode()
    assert "manuals" in page and "bob-merger-plans" not in page
