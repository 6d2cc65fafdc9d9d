"""Answer a question: guardrail, retrieve, prompt, generate, attribute,
guardrail, store. The one seam between generation's pure parts and the ORM."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field, replace

from django.conf import settings
from django.db import transaction

from core import metrics
from generation import caution, evaluation, parts, policy, turns
from generation.engines import get_engine
from generation.gathering import context, gather_evidence
from generation.guardrails import get_classifier, is_toxic
from generation.models import Citation, Conversation, GuardrailEvent, Message
from generation.prompts import EvidenceLine, build_prompt, standalone_question
from generation.streaming import buffered
from retrieval.search import SearchError, search

log = logging.getLogger(__name__)

REFUSAL_QUESTION = "I can't help with that request: the question was flagged as toxic or abusive. Please rephrase it."
REFUSAL_ANSWER = "The generated answer was withheld because it was flagged as toxic. Please rephrase your question."
STOP = ("<|im_end|>", "<|endoftext|>", "\nQuestion:", "\nPassages:")
# The longest question any door takes: with the evidence it fits the model's context.
MAX_QUESTION_CHARS = 2000


@dataclass
class AnswerResult:
    answer: str
    citations: list[dict]
    passages: list[dict]  # the passages behind the evidence; or, when nothing answered, the closest ones
    found: bool
    guardrail: dict
    conversation_id: int
    message_id: int
    timings: dict = field(default_factory=dict)
    kind: str = policy.GENERATED  # generated | quoted | not_found | refused (generation.policy)
    generated: str = ""  # the model's own text (shown only when kind is "generated")
    notice: str = ""  # for the reader, when the shown answer is not the model's text
    reason: str = ""  # why the model's text did not verify
    evidence: list[dict] = field(default_factory=list)  # the evidence the model read, best first
    gate: dict = field(default_factory=dict)  # the "not in the documents" decision: confidence and signals

    def as_dict(self) -> dict:
        return asdict(self)

    def for_caller(self) -> dict:
        """What a user is shown (the API, the chat): as_dict() without the
        evidence scores that weigh words by their rarity in the whole corpus
        (BM25's IDF over every collection), which would tell a user about
        documents they cannot read; an evidence row keeps the cosine of question
        and sentence ("dense") and whether it holds the kind of value asked for
        ("type"); the gate's signals and confidence, made of the same scores,
        are left out. Trusted callers (the CLI, evaluate_answers) read as_dict()."""
        data = self.as_dict()
        data.pop("gate")
        data["evidence"] = [
            {
                **{k: v for k, v in row.items() if k not in ("score", "order", "features")},
                "features": {k: v for k, v in row.get("features", {}).items() if k in CALLER_FEATURES},
            }
            for row in data["evidence"]
        ]
        return data


# Evidence features that depend only on the question and the sentence.
CALLER_FEATURES = frozenset({"dense", "type"})


class Timer:
    def __init__(self):
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round((now - self._last) * 1000, 1)
        self._last = now


def conversation_for(user, conversation_id: int | None) -> Conversation | None:
    """The user's conversation by id (404-style LookupError if not theirs), or
    None for a new one."""
    if conversation_id is None:
        return None
    try:
        return Conversation.objects.get(pk=conversation_id, user=_owner(user))
    except Conversation.DoesNotExist:
        raise LookupError(f"No conversation {conversation_id}.") from None


def _owner(user):
    return user if getattr(user, "is_authenticated", False) else None


def ask(question: str, **options) -> AnswerResult:
    """The whole answer at once (the CLI, the non-streaming API); `options` as ask_stream's."""
    for event in ask_stream(question, **options):
        if event["event"] == "done":
            return event["result"]
    raise RuntimeError("the answer stream ended without a result")


def ask_stream(
    question: str,
    *,
    user=None,
    conversation_id: int | None = None,
    collections: list[str] | None = None,
    edit_of: int | None = None,
    again_of: int | None = None,
    documents: list[int] | None = None,
    passages: int | None = None,
):
    """Answer as a stream of events: `start`, `token`* (the model's text as it
    is generated), `retract` (the guardrail stopped a toxic continuation),
    `replace` (the model's text did not verify: the evidence is quoted
    instead) and `done` with the stored AnswerResult. The question is a new
    turn at the end of the conversation's branch on show, an edit of question
    `edit_of` or question `again_of` asked again (generation/turns.py). An
    answer stopped (the stream closed) or broken midway is stored with the
    text it had, as its kind says. `collections` and `documents` narrow
    where it looks (among what the user may read); `passages` how many
    passages it retrieves (RAG_ANSWER_PASSAGES by default)."""
    timer = Timer()
    conversation = conversation_for(user, conversation_id)
    where = turns.place(conversation, (question or "").strip(), edit_of=edit_of, again_of=again_of)
    question = where.question
    if not question:
        raise SearchError("The question is empty.")
    query = standalone_question(question, where.earlier)
    # Searched before anything is stored or streamed: a collection the user
    # cannot read is a SearchError for the caller (a 400), not a new empty
    # conversation and a broken stream. (A refused question's search is wasted.)
    looking = {
        "collections": collections,
        "documents": documents or None,
        "k": passages or settings.RAG_ANSWER_PASSAGES,
    }
    hits = search(query, user=user, **looking)
    timer.lap("retrieval")
    if conversation is None:
        conversation = Conversation.objects.create(user=_owner(user), title=question[:200])
    if where.existing is None:
        where = replace(where, existing=_keep_question(conversation, where))
    owner = conversation.user
    yield {"event": "start", "conversation_id": conversation.pk, "query": query}
    scope = [*(collections or ()), *_titles(documents, user)]
    store = functools.partial(_store, conversation, where, timer=timer, user=owner, scope=scope)
    yield from _kept_when_cut(_answering(question, query, hits, store, timer, user, looking), store)


def _keep_question(conversation: Conversation, where: turns.Place) -> Message:
    """The new question stored, and on show, before its answer begins: a
    server killed mid-answer leaves the turn with its question (which the
    next question takes the place of, generation/turns.py), not nothing."""
    with transaction.atomic():
        asked = Message(
            conversation=conversation, role=Message.Role.USER, content=where.question, parent_id=where.parent
        )
        asked.starts_branch = where.parent is None
        asked.save()
        conversation.current = asked
        conversation.save(update_fields=["updated", "current"])
    return asked


def _titles(documents: list[int] | None, user) -> list[str]:
    """The titles of the narrowing documents the user may read (for "searched only in")."""
    if not documents:
        return []
    from ingestion.models import Collection, Document

    readable = Document.objects.filter(pk__in=documents)
    if user is not None:
        readable = readable.filter(collection__in=Collection.objects.readable_by(user))
    return list(readable.values_list("title", flat=True))


CUT_NOTICES = {
    policy.STOPPED: "Stopped before it was checked against the documents.",
    policy.BROKEN: "Interrupted before it was checked against the documents.",
}


def _kept_when_cut(events, store):
    """`events` as they come; if the stream is closed (the asker stopped, or
    went away) or fails before the answer is stored, what the model had
    written so far is stored as a stopped or broken answer, so the turn is
    there after a reload. Text the guardrail retracted is not kept."""
    text, done = "", False
    try:
        for event in events:
            if event["event"] == "token":
                text += event["text"]
            elif event["event"] == "retract":
                text = ""
            elif event["event"] == "done":
                done = True
            yield event
    except GeneratorExit:
        events.close()  # the model stops first
        if not done:
            _store_cut(store, text, policy.STOPPED)
        raise
    except Exception:
        if not done:
            _store_cut(store, text, policy.BROKEN)
        raise


def _store_cut(store, text: str, kind: str) -> None:
    try:
        score = get_classifier().score([text])[0] if text.strip() else 0.0
        toxic = is_toxic(score)
        store(
            "" if toxic else text.strip(),
            [],
            [],
            kind=kind,
            notice=CUT_NOTICES[kind],
            flagged_text=text if toxic else None,
            guardrail={"intervened": toxic, "direction": "answer" if toxic else None, "score": score},
        )
    except Exception:
        log.exception("The cut answer could not be stored")


def _answering(question, query, hits, store, timer, user, looking):
    """The answer's events after `start`: the guardrail on the question, the
    evidence, then a composed, quoted or generated and verified answer."""
    classifier = get_classifier()
    q_score = classifier.score([question])[0]
    timer.lap("guardrail_question")
    if is_toxic(q_score):
        yield _done(
            store(
                REFUSAL_QUESTION,
                [],
                [],
                kind=policy.REFUSED,
                guardrail={"intervened": True, "direction": "question", "score": q_score},
            )
        )
        return

    relevant = [h for h in hits if h.score >= settings.RAG_MIN_RELEVANCE]
    listing = parts.asks_for_list(query)
    found = gather_evidence(query, relevant, listing=listing)
    timer.lap("evidence")
    calm = {"intervened": False, "direction": None, "score": q_score}
    # A question of several parts is answered part by part. Where the gate
    # doubts the whole of it (the kind of value asked for is each part's to
    # check), a part is answered only by evidence that mentions every word
    # it asks about: decided part by part alone, a near miss ("the Platinum
    # card's late payment fee?" met by its annual fee) was answered with a
    # citation (docs/BENCHMARKS.md, the dev parts).
    asked = parts.split(query)
    if len(asked) > 1:
        strict = not (found.answers or found.lacks)
        yield _done(_answer_in_parts(asked, hits, store, classifier, q_score, timer, user, looking, strict))
        return
    if not found.answers:
        closest = hits[: settings.RAG_CLOSEST_PASSAGES]
        answer = policy.not_found_answer(found.unknown, bool(closest), found.lacks)
        yield _done(
            store(
                answer,
                [],
                closest,
                kind=policy.NOT_FOUND,
                guardrail=calm,
                evidence=found.rows(relevant),
                gate=found.gate(),
            )
        )
        return

    if listing:  # one checked item a line, from the evidence (generation/parts.py)
        pairs = [(u, relevant[u.passage]) for u in found.units]
        decision = parts.compose_list(_items(pairs), found.profile.wants)
        timer.lap("verification")
        yield _done(
            _store_composed(
                decision,
                pairs,
                found.rows(relevant),
                found.gate(),
                parts.LIST_NOTICE,
                store,
                classifier,
                q_score,
                timer,
            )
        )
        return

    engine = get_engine()
    budget = settings.RAG_GENERATOR_CONTEXT - settings.RAG_GENERATOR_MAX_TOKENS
    lines = [EvidenceLine(u.text, u.heading) for u in found.units]
    prompt = build_prompt(query, lines, count_tokens=engine.count_tokens, budget=budget)
    kept = {id(line) for line in prompt.passages}
    units = [u for u, line in zip(found.units, lines) if id(line) in kept]
    timer.lap("prompt")

    raw, flagged, window_start = "", None, 0
    tokens = buffered(
        lambda: engine.stream(prompt.messages, max_new_tokens=settings.RAG_GENERATOR_MAX_TOKENS, stop=STOP)
    )
    try:
        for piece in tokens:
            if not raw:
                timer.lap("first_token")
            raw += piece
            yield {"event": "token", "text": piece}
            # Score the answer in windows as it arrives; stop a toxic continuation.
            if len(raw) - window_start >= settings.RAG_GUARDRAIL_WINDOW_CHARS or piece.rstrip().endswith(
                (".", "!", "?")
            ):
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
        yield _done(
            store(
                REFUSAL_ANSWER,
                [],
                [],
                kind=policy.REFUSED,
                flagged_text=raw,
                guardrail={"intervened": True, "direction": "answer", "score": a_score, "question_score": q_score},
            )
        )
        return

    items = _items([(u, relevant[u.passage]) for u in units])
    decision = policy.decide(
        raw,
        query,
        items,
        wants=found.profile.wants,
        salient=found.salient,
        margin=settings.RAG_EVIDENCE_MARGIN,
        quote_margin=settings.RAG_QUOTE_MARGIN,
        quote_chars=settings.RAG_QUOTE_CHARS,
    )
    timer.lap("verification")
    if decision.kind == policy.QUOTED:
        yield {"event": "replace", "kind": decision.kind, "answer": decision.answer, "notice": policy.QUOTE_NOTICE}
    citations = _citations(decision, [(u, relevant[u.passage]) for u in units])
    shown = list({relevant[u.passage].chunk_id: relevant[u.passage] for u in units}.values())
    yield _done(
        store(
            decision.answer,
            citations,
            shown,
            kind=decision.kind,
            generated=raw,
            evidence=found.rows(relevant, units),
            gate=found.gate(),
            notice=policy.QUOTE_NOTICE if decision.kind == policy.QUOTED else "",
            reason=decision.reason,
            guardrail={"intervened": False, "direction": None, "score": max(q_score, a_score)},
        )
    )


def _answer_in_parts(asked, hits, store, classifier, q_score, timer, user, looking, strict) -> AnswerResult:
    """A question of several parts (generation/parts.py): each part searched
    (its hits added to the whole question's) and decided on its own
    evidence (`strict`: and only where that evidence mentions every term the
    part asks about); one quoted statement per answered part, "not in the
    documents" when none is."""
    answered, pairs, rows, gates, quoted = [], [], [], [], []
    seen = {h.chunk_id for h in hits}
    for asked_part, part in zip(asked, parts.standalone(asked)):
        more = search(part, user=user, **looking)
        pool = hits + [h for h in more if h.chunk_id not in seen]
        relevant = [h for h in pool if h.score >= settings.RAG_MIN_RELEVANCE]
        found = gather_evidence(part, relevant)
        answers = found.answers and not (strict and found.signals.get("missing", 1.0) > 0)
        best = found.units[:1] if answers else []
        if any(parts.already_quoted((relevant[u.passage].chunk_id, u.start, u.end), quoted) for u in best):
            best = []
        quoted += [(relevant[u.passage].chunk_id, u.context_start, u.context_end) for u in best]
        items = _items([(u, relevant[u.passage]) for u in best])
        answered.append(parts.Part(asked_part, items, bool(items), found.profile.wants))
        pairs += [(u, relevant[u.passage]) for u in best]
        rows += found.rows(relevant, best)
        gates.append({"part": part, **found.gate(), "answers": answers, "strict": strict})
    timer.lap("evidence")
    gate = {"parts": gates, "answers": any(p.answers for p in answered)}
    if not pairs:
        closest = hits[: settings.RAG_CLOSEST_PASSAGES]
        calm = {"intervened": False, "direction": None, "score": q_score}
        answer = policy.not_found_answer((), bool(closest))
        return store(answer, [], closest, kind=policy.NOT_FOUND, guardrail=calm, gate=gate)
    return _store_composed(parts.compose(answered), pairs, rows, gate, parts.NOTICE, store, classifier, q_score, timer)


def _items(pairs) -> list[policy.Item]:
    """The policy's items for (unit, hit) pairs: one source per passage."""
    return [policy.item(u, context(hit, u), hit.title, hit.chunk_id) for u, hit in pairs]


def _store_composed(decision, pairs, rows, gate, notice, store, classifier, q_score, timer) -> AnswerResult:
    """A composed answer (parts, a list) stored after the guardrail has scored it."""
    a_score = classifier.score([decision.answer])[0]
    timer.lap("guardrail_answer")
    if is_toxic(a_score):
        guardrail = {"intervened": True, "direction": "answer", "score": a_score, "question_score": q_score}
        return store(REFUSAL_ANSWER, [], [], kind=policy.REFUSED, flagged_text=decision.answer, guardrail=guardrail)
    cited = [pairs[i] for i in decision.cited]
    return store(
        decision.answer,
        _citations(decision, pairs),
        list({hit.chunk_id: hit for _, hit in cited}.values()),
        kind=policy.QUOTED,
        evidence=rows,
        gate=gate,
        notice=notice,
        guardrail={"intervened": False, "direction": None, "score": max(q_score, a_score)},
    )


def _citations(decision: policy.Decision, pairs) -> list[dict]:
    """One citation per number, so per passage: the spans of the answer its
    units support and their sentences to highlight; `pairs[i]` is the unit
    behind item i and its hit. Its score is the best cosine of question and
    cited sentence (the evidence score also weighs words by their rarity in
    the whole corpus)."""
    citations: dict[int, dict] = {}
    for index in decision.cited:
        (unit, passage), number = pairs[index], decision.numbers[index]
        citation = citations.setdefault(
            number, {"number": number, "passage": passage, "spans": [], "score": 0.0, "highlight": []}
        )
        citation["spans"] += decision.spans[index]
        citation["score"] = max(citation["score"], unit.features["dense"])
        citation["highlight"].append([unit.start, min(unit.end, len(passage.text))])
    for citation in citations.values():
        citation["spans"].sort()
        citation["highlight"].sort()
    return [citations[number] for number in sorted(citations)]


def _done(result: AnswerResult) -> dict:
    return {"event": "done", "result": result}


def _store(
    conversation,
    where: turns.Place,
    answer,
    citations,
    hits,
    *,
    kind,
    guardrail,
    timer,
    user,
    flagged_text=None,
    generated="",
    notice="",
    reason="",
    evidence=(),
    gate=None,
    scope=(),
) -> AnswerResult:
    found = kind in (policy.GENERATED, policy.QUOTED)
    if kind == policy.NOT_FOUND and scope and not notice:  # "not in the documents" of the collections asked
        notice = "Searched only in " + ", ".join(f"“{name}”" for name in scope) + "."
    if found:
        notice = caution.with_caution(notice, answer)
    question = where.question
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation,
            parent=where.existing,
            role=Message.Role.ASSISTANT,
            content=answer,
            found=found,
            kind=kind,
            generated=generated if generated != answer else "",
            notice=notice,
            passages=[h.for_caller() for h in hits] if kind == policy.NOT_FOUND else [],
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
                highlight=c["highlight"],
            )
            for c in citations
        ]
        Citation.objects.bulk_create(rows)
        if guardrail["intervened"]:
            direction = guardrail["direction"]
            GuardrailEvent.objects.create(
                user=user,
                direction=direction,
                score=guardrail["score"],
                text=question if direction == "question" else (flagged_text or ""),
            )
        conversation.current = message
        conversation.save(update_fields=["updated", "current"])
    timer.timings["total"] = round(sum(timer.timings.values()), 1)
    metrics.answered(kind, timer.timings, guardrail)
    return AnswerResult(
        answer=answer,
        citations=[row.as_dict() for row in rows],
        passages=[h.for_caller() for h in hits],
        found=found,
        guardrail=guardrail,
        conversation_id=conversation.pk,
        message_id=message.pk,
        timings=timer.timings,
        kind=kind,
        generated=generated,
        notice=notice,
        reason=reason,
        evidence=list(evidence),
        gate=gate or {},
    )


def evaluate_answers(questions, *, k: int | None = None, collections: list[str] | None = None, progress=None) -> dict:
    """Run the answer path on labelled questions (each in a new conversation
    of no user: a trusted caller, as the CLI) and score it (generation.evaluation)."""
    rows = []
    for done, item in enumerate(questions, start=1):
        started = time.perf_counter()
        result = ask(item.question, collections=collections, passages=k).as_dict()
        seconds = time.perf_counter() - started
        outcome = evaluation.Outcome(
            answer=result["answer"],
            found=result["found"],
            kind=result["kind"],
            cited_quotes=tuple(c["quote"] for c in result["citations"]),
            cited_files=tuple(c["filename"] for c in result["citations"]),
            passages=tuple(p["text"] for p in result["passages"]),
            evidence=tuple(e["text"] for e in result["evidence"]),
            generated=result["generated"],
            seconds=seconds,
            confidence=result["gate"].get("confidence"),
        )
        rows.append(evaluation.judge(item, outcome))
        if progress:
            progress(done, len(questions))
    return {"summary": evaluation.summarise(rows), "questions": rows}
