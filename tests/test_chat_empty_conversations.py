"""The sidebar leaves out a conversation whose answer never landed (the
server stopped mid-answer: the conversation is stored before its messages)
once it is over a minute old; a newer one may still be answering and stays."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.services import EMPTY_CONVERSATION_GRACE
from generation.models import Conversation, Message

pytestmark = pytest.mark.django_db


def started(user, title, ago, messages=0):
    conversation = Conversation.objects.create(user=user, title=title)
    Conversation.objects.filter(pk=conversation.pk).update(created=timezone.now() - ago)
    for number in range(messages):
        Message.objects.create(
            conversation=conversation, role="user" if number % 2 == 0 else "assistant", content=title
        )
    return conversation


def sidebar(client, path="/"):
    return [c.title for c in client.get(path).context["conversations"]]


def test_it_hides_empty_conversations_older_than_a_minute(client, alice):
    started(alice, "answered long ago", timedelta(days=2), messages=2)
    dead = started(alice, "died mid-answer", EMPTY_CONVERSATION_GRACE + timedelta(seconds=5))
    started(alice, "still answering", timedelta(seconds=10))
    client.force_login(alice)
    assert sorted(sidebar(client)) == ["answered long ago", "still answering"]
    assert "died mid-answer" not in sidebar(client, "/?q=died")
    assert client.get(f"/c/{dead.pk}/").status_code == 200  # hidden, not deleted


def test_a_late_answer_brings_the_conversation_back(client, alice):
    late = started(alice, "slow answer", timedelta(minutes=5))
    client.force_login(alice)
    assert sidebar(client) == []
    Message.objects.create(conversation=late, role="user", content="slow answer")
    assert sidebar(client) == ["slow answer"]
