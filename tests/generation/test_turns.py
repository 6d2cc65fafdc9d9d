"""Turns that last (generation/turns.py, services.ask_stream): an answer
asked again is a version of its turn, an edited question a version of its
question with the later turns on their own branch, a switch shows another
version, and an answer stopped or broken midway is stored with its text."""

import json

import pytest

from generation import services, turns
from generation.models import Conversation, Message
from tests.engines import ScriptedEngine

pytestmark = pytest.mark.django_db

FEE = "What is the annual fee of the Gold card?"
SILVER = "And the Silver card?"


def shown(conversation_id, client=None):
    conversation = Conversation.objects.get(pk=conversation_id)
    messages, tree = turns.shown(conversation)
    return [(m.role, m.content if m.role == "user" else m.kind, len(tree.versions(m.pk))) for m in messages]


def test_asking_again_adds_a_version_of_the_answer_not_a_turn(alice, handbook):
    first = services.ask(FEE, user=alice)
    question = Message.objects.get(pk=first.message_id).parent
    again = services.ask("", user=alice, conversation_id=first.conversation_id, again_of=question.pk)
    assert Message.objects.filter(conversation_id=first.conversation_id, role="user").count() == 1
    assert Message.objects.get(pk=again.message_id).parent_id == question.pk
    assert shown(first.conversation_id) == [("user", FEE, 1), ("assistant", again.kind, 2)]


def test_an_edited_question_branches_and_the_old_branch_is_kept(alice, handbook):
    first = services.ask(FEE, user=alice)
    second = services.ask(SILVER, user=alice, conversation_id=first.conversation_id)
    asked = Message.objects.get(pk=first.message_id).parent
    edited = services.ask(
        "What is the annual fee of the Platinum card?",
        user=alice,
        conversation_id=first.conversation_id,
        edit_of=asked.pk,
    )
    assert shown(first.conversation_id) == [
        ("user", "What is the annual fee of the Platinum card?", 2),
        ("assistant", edited.kind, 1),
    ]
    # The first version again: its answer and the turn after it, as they were.
    conversation = Conversation.objects.get(pk=first.conversation_id)
    turns.switch(conversation, asked.pk)
    assert [m.pk for m in turns.shown(conversation)[0]] == [
        asked.pk,
        first.message_id,
        Message.objects.get(pk=second.message_id).parent_id,
        second.message_id,
    ]
    # A follow-up is read against the branch on show: the Silver question after the Gold one.
    events = list(services.ask_stream("and its late fee?", user=alice, conversation_id=first.conversation_id))
    assert "Platinum" not in events[0]["query"]


def test_a_follow_up_after_an_edit_reads_the_edited_question(alice, handbook):
    first = services.ask("What is the annual fee of the Platinum card?", user=alice)
    asked = Message.objects.get(pk=first.message_id).parent
    services.ask(FEE, user=alice, conversation_id=first.conversation_id, edit_of=asked.pk)
    events = list(
        services.ask_stream("and what about the silver card?", user=alice, conversation_id=first.conversation_id)
    )
    assert events[0]["query"] == "What is the annual fee of the silver card?"


def test_versions_and_edits_stay_inside_the_askers_conversation(alice, bob, handbook):
    first = services.ask(FEE, user=alice)
    asked = Message.objects.get(pk=first.message_id).parent
    other = services.ask(FEE, user=alice)
    with pytest.raises(LookupError):  # a question of another conversation
        list(services.ask_stream("x", user=alice, conversation_id=other.conversation_id, edit_of=asked.pk))
    with pytest.raises(LookupError):  # an answer is not a question
        list(services.ask_stream("", user=alice, conversation_id=first.conversation_id, again_of=first.message_id))
    with pytest.raises(LookupError):  # bob's view of alice's conversation
        list(services.ask_stream("", user=bob, conversation_id=first.conversation_id, again_of=asked.pk))


class HalfEngine(ScriptedEngine):
    script = ("The Gold card ", "costs ", "ninety ", "five ", "euros ", "a ", "year ", "[1].")


def test_a_stopped_answer_is_stored_with_its_text(alice, handbook, settings):
    settings.RAG_GENERATOR_ENGINE = "tests.generation.test_turns.HalfEngine"
    events = services.ask_stream(FEE, user=alice)
    start = next(events)
    while next(events)["event"] != "token":
        pass
    next(events)
    events.close()  # the asker pressed Stop (or left)
    messages, _ = turns.shown(Conversation.objects.get(pk=start["conversation_id"]))
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content == FEE
    answer = messages[1]
    assert answer.kind == "stopped" and answer.content == "The Gold card costs" and not answer.found
    assert answer.notice == services.CUT_NOTICES["stopped"] and not answer.citations.exists()


class FailingEngine(ScriptedEngine):
    def pieces(self):
        yield "The Gold "
        raise RuntimeError("the engine fell over")


def test_a_broken_answer_is_stored_and_can_be_asked_again(alice, handbook, settings):
    settings.RAG_GENERATOR_ENGINE = "tests.generation.test_turns.FailingEngine"
    events = services.ask_stream(FEE, user=alice)
    start = next(events)
    with pytest.raises(RuntimeError):
        list(events)
    conversation = Conversation.objects.get(pk=start["conversation_id"])
    messages, _ = turns.shown(conversation)
    assert [(m.role, m.kind, m.content) for m in messages] == [("user", "", FEE), ("assistant", "broken", "The Gold")]
    settings.RAG_GENERATOR_ENGINE = "tests.engines.FeeEngine"
    again = services.ask("", user=alice, conversation_id=conversation.pk, again_of=messages[0].pk)
    assert again.found
    assert shown(conversation.pk) == [("user", FEE, 1), ("assistant", again.kind, 2)]


def test_a_server_killed_mid_answer_leaves_the_question_which_the_next_one_takes_the_place_of(alice, handbook):
    # The audit's L6: a web server killed mid-answer left the conversation with 0 messages.
    events = services.ask_stream(FEE, user=alice)
    start = next(events)
    while next(events)["event"] != "token":
        pass
    # Killed here: no close, no store; what is in the database is what a reload shows.
    conversation = Conversation.objects.get(pk=start["conversation_id"])
    assert shown(conversation.pk) == [("user", FEE, 1)]
    answer = services.ask(SILVER, user=alice, conversation_id=conversation.pk)
    assert shown(conversation.pk) == [("user", SILVER, 2), ("assistant", answer.kind, 1)]


def test_switching_back_to_a_version_shows_the_branch_last_viewed_there_not_the_newest(alice, handbook):
    first = services.ask(FEE, user=alice)
    conversation_id = first.conversation_id
    second = services.ask(SILVER, user=alice, conversation_id=conversation_id)
    silver = Message.objects.get(pk=second.message_id).parent
    again = services.ask("", user=alice, conversation_id=conversation_id, again_of=silver.pk)  # a newer version
    conversation = Conversation.objects.get(pk=conversation_id)
    turns.switch(conversation, second.message_id)  # the reader goes back to the first answer to Silver
    gold = Message.objects.get(pk=first.message_id).parent
    edited = services.ask(
        "What is the annual fee of the Platinum card?", user=alice, conversation_id=conversation_id, edit_of=gold.pk
    )
    conversation.refresh_from_db()
    assert conversation.current_id == edited.message_id
    turns.switch(conversation, gold.pk)  # back to the first version of the first question
    conversation.refresh_from_db()
    assert conversation.current_id == second.message_id  # as last viewed there, not the newer `again`
    turns.switch(conversation, again.message_id)
    turns.switch(conversation, Message.objects.get(pk=edited.message_id).parent_id)
    turns.switch(conversation, gold.pk)
    conversation.refresh_from_db()
    assert conversation.current_id == again.message_id


def test_the_chat_switches_versions_and_shows_them(client, alice, handbook):
    first = services.ask(FEE, user=alice)
    asked = Message.objects.get(pk=first.message_id).parent
    services.ask("", user=alice, conversation_id=first.conversation_id, again_of=asked.pk)
    client.force_login(alice)
    branch = client.get(f"/c/{first.conversation_id}/branch/").json()["messages"]
    assert branch[1]["versions"] == [first.message_id, branch[1]["id"]] and branch[1]["id"] != first.message_id
    response = client.post(
        f"/c/{first.conversation_id}/switch/",
        json.dumps({"message_id": first.message_id}),
        content_type="application/json",
    )
    assert [m["id"] for m in response.json()["messages"]] == [asked.pk, first.message_id]
    page = client.get(f"/c/{first.conversation_id}/")
    assert [m["id"] for m in page.context["history"]] == [asked.pk, first.message_id]  # kept after a reload
    bad = client.post(f"/c/{first.conversation_id}/switch/", "{}", content_type="application/json")
    assert bad.status_code == 400
    other = client.post(
        f"/c/{first.conversation_id}/switch/", json.dumps({"message_id": 10**6}), content_type="application/json"
    )
    assert other.status_code == 404


def test_the_api_asks_again_and_edits(alice, handbook):
    from tests.conftest import api_client_for

    api = api_client_for(alice)
    first = api.post("/api/ask", {"question": FEE}, format="json").json()
    asked = Message.objects.get(pk=first["message_id"]).parent_id
    again = api.post("/api/ask", {"conversation_id": first["conversation_id"], "again_of": asked}, format="json")
    assert again.status_code == 200 and Message.objects.get(pk=again.json()["message_id"]).parent_id == asked
    assert api.post("/api/ask", {"again_of": asked}, format="json").status_code == 400  # which conversation?
    both = {"conversation_id": first["conversation_id"], "again_of": asked, "edit_of": asked, "question": "x"}
    assert api.post("/api/ask", both, format="json").status_code == 400
    assert api.post("/api/ask", {"conversation_id": first["conversation_id"]}, format="json").status_code == 400
    edit = {"conversation_id": first["conversation_id"], "edit_of": asked, "question": SILVER}
    edited = api.post("/api/ask", edit, format="json")
    assert edited.status_code == 200
    assert Message.objects.get(pk=edited.json()["message_id"]).parent.parent_id is None  # a first question too
