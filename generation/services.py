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
from generation.guardrails import get_classifier, is_toxic
from generation.models import Citation, Conversation, GuardrailEvent, Message
from generation.prompts import PromptPassage, build_prompt, standalone_question
from generation.streaming import buffered
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
    unsupported_spans: list = field(default_factory=list)  # [start, end] of answer sentences no passage supports

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
            "unsupported_spans": self.unsupported_spans,
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
    """The whole answer at once (the CLI, the non-streaming API)."""
    for event in ask_stream(question, user=user, conversation_id=conversation_id, collections=collections):
        if event["event"] == "done":
            return event["result"]
    raise RuntimeError("the answer stream ended without a result")


def ask_stream(question: str, *, user=None, conversation_id: int | None = None, collections: list[str] | None = None):
    """Answer as a stream of events: `start`, `token`* (the model's text as it
    is generated), `retract` (the guardrail stopped a toxic continuation), and
    `done` with the stored AnswerResult (answer with [n] markers, citations)."""
    question = (question or "").strip()
    if not question:
        raise retrieval.SearchError("The question is empty.")
    timer = Timer()
    conversation = conversation_for(user, conversation_id, question)
    owner = conversation.user
    history = list(conversation.messages.filter(role=Message.Role.USER).values_list("content", flat=True))
    query = standalone_question(question, history)
    yield {"event": "start", "conversation_id": conversation.pk, "query": query}

    classifier = get_classifier()
    q_score = classifier.score([question])[0]
    timer.lap("guardrail_question")
    if is_toxic(q_score):
        yield _done(_store(conversation, question, REFUSAL_QUESTION, [], [], found=False, timer=timer,
                           guardrail={"intervened": True, "direction": "question", "score": q_score}, user=owner))
        return

    hits = retrieval.search(query, user=user, k=settings.RAG_ANSWER_PASSAGES, collections=collections)
    timer.lap("retrieval")
    relevant = [h for h in hits if h.score >= settings.RAG_MIN_RELEVANCE]
    if not relevant:
        yield _done(_store(conversation, question, NOT_FOUND + (" The closest passages are listed below." if hits else ""),
                           [], hits, found=False, timer=timer,
                           guardrail={"intervened": False, "direction": None, "score": q_score}, user=owner))
        return

    engine = get_engine()
    budget = settings.RAG_GENERATOR_CONTEXT - settings.RAG_GENERATOR_MAX_TOKENS
    prompt = build_prompt(query, [PromptPassage(h.text, h.title, h.page) for h in relevant],
                          count_tokens=engine.count_tokens, budget=budget)
    used = relevant[: len(prompt.passages)]
    timer.lap("prompt")

    raw, flagged, window_start = "", None, 0
    tokens = buffered(lambda: engine.stream(prompt.messages, max_new_tokens=settings.RAG_GENERATOR_MAX_TOKENS, stop=STOP))
    try:
        for piece in tokens:
            if not raw:
                timer.lap("first_token")
            raw += piece
            yield {"event": "token", "text": piece}
            # Score the answer in windows as it arrives; stop a toxic continuation.
            if len(raw) - window_start >= settings.RAG_GUARDRAIL_WINDOW_CHARS or piece.rstrip().endswith((".", "!", "?")):
                window_start = len(raw)
                score = classifier.score([raw[-400:]])[0]
                if is_toxic(score):
                    flagged = score
                    break
    finally:
        tokens.close()
    timer.lap("generation")
    raw = raw.strip()

    a_score = flagged if flagged is not None else (classifier.score([raw])[0] if raw else 0.0)
    timer.lap("guardrail_answer")
    if is_toxic(a_score):
        yield {"event": "retract", "reason": REFUSAL_ANSWER}
        yield _done(_store(conversation, question, REFUSAL_ANSWER, [], used, found=True, timer=timer,
                           guardrail={"intervened": True, "direction": "answer", "score": a_score, "question_score": q_score},
                           user=owner, flagged_text=raw))
        return

    attribution = attribute(raw or NOT_FOUND, [h.text for h in used], get_embedder().embed_passages,
                            settings.RAG_SUPPORT_THRESHOLD, passage_vectors=retrieval.passage_vectors([h.chunk_id for h in used]))
    timer.lap("attribution")
    citations = [
        {"number": n, "passage": used[p], "spans": attribution.spans[p],
         "score": max(s.score for s in attribution.sentences if s.passage == p)}
        for n, p in enumerate(attribution.cited, start=1)
    ]
    unsupported = [[s.start, s.end] for s in attribution.sentences if s.passage is None]
    yield _done(_store(conversation, question, attribution.answer, citations, used, found=True, timer=timer,
                       guardrail={"intervened": False, "direction": None, "score": max(q_score, a_score)}, user=owner,
                       unsupported=unsupported))


def _done(result: AnswerResult) -> dict:
    return {"event": "done", "result": result}


def _store(conversation, question, answer, citations, hits, *, found, guardrail, timer, user, flagged_text=None,
           unsupported=()) -> AnswerResult:
    with transaction.atomic():
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=question)
        message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=answer,
            found=found,
            guardrail_intervened=guardrail["intervened"],
            timings=timer.timings,
            unsupported_spans=[list(span) for span in unsupported],
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
        unsupported_spans=message.unsupported_spans,
    )
