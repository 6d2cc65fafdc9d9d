"""A conversation exported as Markdown and JSON (chat/export.py): the
branch on show with each answer's sources and cited sentences, for its
owner only, withheld where the chat withholds."""

import json

import pytest

from generation.models import Conversation, Message
from tests.test_chat_ui import answered, public  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def test_a_conversation_exports_as_markdown_with_its_sources(client, alice, answered):  # noqa: F811
    conversation, answer, _ = answered
    client.force_login(alice)
    response = client.get(f"/c/{conversation.pk}/export.md")
    assert response.status_code == 200 and response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="fees-{conversation.pk}.md"'
    text = response.content.decode()
    assert text.startswith("# Fees\n")
    assert "## Question · " in text and "> What are the fees?" in text
    assert "### Answer · " in text and "· Checked against the sources" in text
    assert "- Gold: **95 euros** [1]" in text
    assert "1. Card Handbook (handbook.pdf, page 2): “The Gold card fee is waived in the first year.”" in text
    assert "2. Old Leaflet (leaflet.pdf, page 1): withdrawn: the document was deleted" in text


def test_a_conversation_exports_as_json(client, alice, answered):  # noqa: F811
    conversation, answer, _ = answered
    client.force_login(alice)
    data = json.loads(client.get(f"/c/{conversation.pk}/export.json").content)
    assert data["title"] == "Fees" and [m["role"] for m in data["messages"]] == ["user", "assistant"]
    sources = data["messages"][1]["sources"]
    assert sources[0] == {
        "number": 1,
        "title": "Card Handbook",
        "filename": "handbook.pdf",
        "page": 2,
        "withdrawn": False,
        "sentence": "The Gold card fee is waived in the first year.",
    }
    assert sources[1]["withdrawn"] is True and sources[1]["sentence"] == ""
    assert data["messages"][1]["kind"] == "generated" and data["messages"][1]["versions"] == 1


def test_only_the_owner_exports_and_hostile_titles_stay_in_their_place(client, alice, bob, answered):  # noqa: F811
    conversation, _, _ = answered
    client.force_login(bob)
    assert client.get(f"/c/{conversation.pk}/export.md").status_code == 404
    client.force_login(alice)
    assert client.get(f"/c/{conversation.pk}/export.exe").status_code == 404
    hostile = Conversation.objects.create(user=alice, title='"; rm -rf / <script>\r\nX-Evil: 1')
    Message.objects.create(conversation=hostile, role="user", content="line one\n# not a heading")
    response = client.get(f"/c/{hostile.pk}/export.md")
    assert response["Content-Disposition"] == f'attachment; filename="rm-rf-script-x-evil-1-{hostile.pk}.md"'
    assert "X-Evil" not in response.headers
    assert "> line one\n> # not a heading" in response.content.decode()  # what was typed stays quoted
