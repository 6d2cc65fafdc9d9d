"""What askers say of answers and sources: helpful or not, and which
sources they opened; and the question-passage pairs that makes, for the
retriever's fine-tuning (retrieval/finetune/, by the dotted path
RAG_FINETUNE_FEEDBACK_SOURCE) to train and judge on.

A pair is (the question as asked, the passages the asker found helpful):
a cited passage marked helpful, or opened and not marked unhelpful, or cited
by an answer marked helpful (unless the passage itself was marked
unhelpful). Only passages that still exist and that the asker may still read
count, so a pair never tells the fine-tuning more than the asker could see.
"""

from __future__ import annotations

from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from generation.models import Citation, Message
from ingestion.models import Collection
from retrieval.evaluation import LabelledQuery


def verdict(value) -> bool | None:
    """A helpful/unhelpful verdict from a request (true, false, or null to take it back)."""
    if value is None or isinstance(value, bool):
        return value
    raise ValueError("helpful must be true, false or null.")


def mark_answer(user, conversation_id: int, message_id: int, helpful: bool | None) -> Message:
    """The asker's verdict on one of their answers (404 for anyone else's)."""
    message = get_object_or_404(
        Message,
        pk=message_id,
        conversation_id=conversation_id,
        conversation__user=user,
        role=Message.Role.ASSISTANT,
    )
    Message.objects.filter(pk=message.pk).update(helpful=helpful)
    message.helpful = helpful
    return message


def _own_citation(user, citation_id: int) -> Citation:
    return get_object_or_404(
        Citation,
        pk=citation_id,
        message__conversation__user=user,
        withdrawn=False,
        document__collection__in=Collection.objects.readable_by(user),
    )


def mark_citation(user, citation_id: int, helpful: bool | None) -> Citation:
    """The asker's verdict on one source of their answer, while they may read it."""
    citation = _own_citation(user, citation_id)
    Citation.objects.filter(pk=citation.pk).update(helpful=helpful)
    citation.helpful = helpful
    return citation


def mark_opened(user, citation_id: int) -> Citation:
    """The asker opened this source (the first time is kept)."""
    citation = _own_citation(user, citation_id)
    Citation.objects.filter(pk=citation.pk, opened__isnull=True).update(opened=timezone.now())
    return citation


def question_of(message: Message) -> str:
    """The question an answer answers: the asker's message just before it."""
    asked = (
        Message.objects.filter(
            conversation_id=message.conversation_id, role=Message.Role.USER, created__lte=message.created
        )
        .exclude(pk__gt=message.pk)
        .order_by("-created", "-pk")
        .values_list("content", flat=True)
        .first()
    )
    return (asked or "").strip()


def labelled_queries() -> list[LabelledQuery]:
    """Every answer with a helpful passage, as a labelled query (by chunk)."""
    said = Q(helpful__isnull=False) | Q(opened__isnull=False) | Q(message__helpful=True)
    citations = (
        Citation.objects.filter(said, chunk__isnull=False, withdrawn=False, message__conversation__user__isnull=False)
        .select_related("message__conversation__user", "chunk__document")
        .order_by("message_id", "number")
    )
    helpful: dict[int, set[int]] = {}
    messages: dict[int, Message] = {}
    readable: dict[int, set[int]] = {}
    for citation in citations:
        message = citation.message
        if citation.helpful is False or (citation.helpful is None and message.helpful is False):
            continue
        if not (citation.helpful or message.helpful or citation.opened):
            continue
        user = message.conversation.user
        if user.pk not in readable:
            readable[user.pk] = set(Collection.objects.readable_by(user).values_list("pk", flat=True))
        if citation.chunk.document.collection_id not in readable[user.pk]:
            continue
        helpful.setdefault(message.pk, set()).add(citation.chunk_id)
        messages[message.pk] = message
    found = []
    for pk, chunks in helpful.items():
        question = question_of(messages[pk])
        if question:
            found.append(LabelledQuery(question, frozenset(chunks), "chunk"))
    return found
