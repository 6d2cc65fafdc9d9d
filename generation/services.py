"""Answer a question: guardrail, retrieve, prompt, generate, attribute,
guardrail, store. The one seam between generation's pure parts and the ORM."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from generation.citations import attribute
from generation.engines import get_engine
from generation.engines.base import generate
from generation.guardrails import get_classifier, is_toxic
from generation.models import Citation, Conversation, GuardrailEvent, Message
from generation.prompts import PromptPassage, build_prompt
from retrieval import services as retrieval
from retrieval.embedding import get_embedder

log = logging.getLogger(__name__)

REFUSAL_QUESTION = "I can't help with that request: the question was flagged as toxic or abusive. Please rephrase it."
REFUSAL_ANSWER = "The generated answer was withheld because it was flagged as toxic. Please rephrase your question."
NOT_FOUND = "I could not find an answer to that in the documents."
STOP = ("<|im_end|>", "<|endoftext|>", "\nQuestion:", "\nPassages:")


@dataclass
class AnswerResult:
    answer: str
    citations: list[dict]
    passages: list[dict]
    found: bool
    guardrail: dict
    conversation_id: int
    message_id: int
    timings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "answer": self.answer,
            "citations": self.citations,
            "passages": self.passages,
            "found": self.found,
            "guardrail": self.guardrail,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "timings": self.timings,
        }


class Timer:
    def __init__(self):
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round((now - self._last) * 1000, 1)
        self._last = now


def conversation_for(user, conversation_id: int | None, question: str) -> Conversation:
    """The user's conversation by id (404-style LookupError if not theirs), or a new one."""
    owner = user if getattr(user, "is_authenticated", False) else None
    if conversation_id is not None:
        try:
            return Conversation.objects.get(pk=conversation_id, user=owner)
        except Conversation.DoesNotExist:
            raise LookupError(f"No conversation {conversation_id}.") from None
    return Conversation.objects.create(user=owner, title=question.strip()[:200])


def ask(question: str, *, user=None, conversation_id: int | None = None, collections: list[str] | None = None) -> AnswerResult:
    question = (question or "").strip()
    if not question:
        raise retrieval.SearchError("The question is empty.")
    timer = Timer()
    conversation = conversation_for(user, conversation_id, question)
    owner = conversation.user

    q_score = get_classifier().score([question])[0]
    timer.lap("guardrail_question")
    if is_toxic(q_score):
        return _store(conversation, question, REFUSAL_QUESTION, [], [], found=False, timer=timer,
                      guardrail={"intervened": True, "direction": "question", "score": q_score}, user=owner)

    hits = retrieval.search(question, user=user, k=settings.RAG_ANSWER_PASSAGES, collections=collections)
    timer.lap("retrieval")
    relevant = [h for h in hits if h.score >= settings.RAG_MIN_RELEVANCE]
    if not relevant:
        return _store(conversation, question, NOT_FOUND + (" The closest passages are listed below." if hits else ""),
                      [], hits, found=False, timer=timer,
                      guardrail={"intervened": False, "direction": None, "score": q_score}, user=owner)

    engine = get_engine()
    budget = settings.RAG_GENERATOR_CONTEXT - settings.RAG_GENERATOR_MAX_TOKENS
    prompt = build_prompt(question, [PromptPassage(h.text, h.title, h.page) for h in relevant],
                          count_tokens=engine.count_tokens, budget=budget)
    used = relevant[: len(prompt.passages)]
    timer.lap("prompt")
    raw = generate(engine, prompt.messages, max_new_tokens=settings.RAG_GENERATOR_MAX_TOKENS, stop=STOP).strip()
    timer.lap("generation")

    a_score = get_classifier().score([raw])[0] if raw else 0.0
    timer.lap("guardrail_answer")
    if is_toxic(a_score):
        return _store(conversation, question, REFUSAL_ANSWER, [], used, found=True, timer=timer,
                      guardrail={"intervened": True, "direction": "answer", "score": a_score, "question_score": q_score},
                      user=owner, flagged_text=raw)

    attribution = attribute(raw or NOT_FOUND, [h.text for h in used], get_embedder().embed_passages, settings.RAG_SUPPORT_THRESHOLD)
    timer.lap("attribution")
    citations = [
        {"number": n, "passage": used[p], "spans": attribution.spans[p],
         "score": max(s.score for s in attribution.sentences if s.passage == p)}
        for n, p in enumerate(attribution.cited, start=1)
    ]
    return _store(conversation, question, attribution.answer, citations, used, found=True, timer=timer,
                  guardrail={"intervened": False, "direction": None, "score": max(q_score, a_score)}, user=owner)


def _store(conversation, question, answer, citations, hits, *, found, guardrail, timer, user, flagged_text=None) -> AnswerResult:
    with transaction.atomic():
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
        message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=answer,
            found=found,
            guardrail_intervened=guardrail["intervened"],
            timings=timer.timings,
        )
        rows = [
            Citation(
                message=message,
                number=c["number"],
                chunk_id=c["passage"].chunk_id,
                document_id=c["passage"].document_id,
                title=c["passage"].title,
                filename=c["passage"].filename,
                page=c["passage"].page,
                quote=c["passage"].text,
                spans=[list(s) for s in c["spans"]],
                score=c["score"],
            )
            for c in citations
        ]
        Citation.objects.bulk_create(rows)
        if guardrail["intervened"]:
            direction = guardrail["direction"]
            GuardrailEvent.objects.create(
                user=user, direction=direction, score=guardrail["score"],
                text=question if direction == "question" else (flagged_text or ""),
            )
        conversation.save(update_fields=["updated"])
    timer.timings["total"] = round(sum(timer.timings.values()), 1)
    return AnswerResult(
        answer=answer,
        citations=[row.as_dict() for row in rows],
        passages=[h.as_dict() for h in hits],
        found=found,
        guardrail=guardrail,
        conversation_id=conversation.pk,
        message_id=message.pk,
        timings=timer.timings,
    )
