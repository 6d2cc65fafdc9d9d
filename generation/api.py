import itertools
import json
import logging

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotFound
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core import metrics
from generation import queueing, services
from generation.answer_slots import AnswerSlot, HeldStream, ServerBusy
from generation.engines.base import GeneratorUnavailable
from ingestion.models import MAX_ID
from retrieval.search import SearchError

log = logging.getLogger(__name__)


class AskRequest(serializers.Serializer):
    question = serializers.CharField(
        max_length=services.MAX_QUESTION_CHARS, required=False, help_text="Required but with `again_of`."
    )
    conversation_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)
    edit_of = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="A question of the conversation this one replaces as a new version; the turns after it "
        "stay on their own branch.",
    )
    again_of = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="A question of the conversation to answer again, as a new version of its answer.",
    )
    collection = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    document = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=20,
        help_text='Only these documents (ids): "ask this document". One the caller may not read finds nothing.',
    )
    stream = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Stream Server-Sent Events: queued* (the answer's place while it waits), start (with `position`: "
        "the answers ahead of it when it was asked), token*, retract?, replace?, done (with citations).",
    )

    def validate(self, data):
        if data.get("edit_of") and data.get("again_of"):
            raise serializers.ValidationError({"again_of": "Edit a question or ask it again, not both."})
        if (data.get("edit_of") or data.get("again_of")) and not data.get("conversation_id"):
            raise serializers.ValidationError({"conversation_id": "Name the conversation of the question."})
        if not data.get("again_of") and not data.get("question"):
            raise serializers.ValidationError({"question": "This field is required."})
        return data


class CitationSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    document_id = serializers.IntegerField(allow_null=True)
    chunk_id = serializers.IntegerField(allow_null=True)
    title = serializers.CharField()
    filename = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    quote = serializers.CharField(allow_blank=True)
    spans = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    score = serializers.FloatField(help_text="Cosine similarity of the question and the cited sentence.")
    highlight = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="[[start, end], ...] of `quote`: the evidence sentence cited.",
    )
    withdrawn = serializers.BooleanField(help_text="The cited document was deleted: `quote` is empty.")


class AskResponse(serializers.Serializer):
    answer = serializers.CharField()
    citations = CitationSerializer(many=True)
    passages = serializers.ListField(child=serializers.DictField())
    found = serializers.BooleanField()
    guardrail = serializers.DictField()
    conversation_id = serializers.IntegerField()
    message_id = serializers.IntegerField()
    timings = serializers.DictField()
    kind = serializers.ChoiceField(
        choices=["generated", "quoted", "not_found", "refused"],
        help_text="generated: the model's text, verified; quoted: the evidence quoted because the "
        "model's text did not verify; not_found: no evidence answers; refused: the guardrail.",
    )
    generated = serializers.CharField(help_text="The model's own text (shown only when kind is generated).")
    notice = serializers.CharField(help_text="For the reader, when the answer is not the model's text.")
    reason = serializers.CharField(help_text="Why the model's text did not verify.")
    evidence = serializers.ListField(
        child=serializers.DictField(),
        help_text="The evidence the model read, best first; `features` gives `dense` (cosine "
        "of question and sentence) and `type`.",
    )


class StreamEvent(serializers.Serializer):
    """One Server-Sent Event of a streamed answer (the schema of each event,
    as OpenAPI describes a text/event-stream)."""

    event = serializers.ChoiceField(choices=["start", "token", "retract", "replace", "done", "error"])
    data = serializers.CharField(
        help_text="The event's JSON: `done` carries the whole answer (as the JSON reply), "
        "`error` a `detail` for the reader."
    )


class EventStreamRenderer(BaseRenderer):
    """Lets clients ask for `Accept: text/event-stream`; the stream itself is a
    StreamingHttpResponse, and errors before it starts are rendered as JSON."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data, ensure_ascii=False).encode() if data is not None else b""


class TooManyAnswers(APIException):
    status_code = 429
    default_code = "too_many_answers"

    def __init__(self):
        cap = settings.RAG_MAX_ANSWERS_PER_USER
        super().__init__(
            f"You have {cap} answer{'s' if cap != 1 else ''} in progress; ask again when one has finished."
        )


class ServerBusyAnswering(APIException):
    status_code = 503
    default_code = "busy"
    default_detail = "The server is answering as many questions as it can; ask again in a moment."

    def __init__(self, detail=None, retry_after: int = 10):
        super().__init__(detail)
        self.retry_after = retry_after


def busy_response(exc: ServerBusyAnswering) -> Response:
    return Response({"detail": str(exc.detail)}, status=503, headers={"Retry-After": str(exc.retry_after)})


class AskView(APIView):
    """Answers are limited apart from searches: the "ask" throttle rate
    (API_ASK_RATE_LIMIT, per user), and RAG_MAX_ANSWERS_PER_USER in flight
    (generation.answer_slots), so that a few users' answers cannot take every
    thread of the web server."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, EventStreamRenderer]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "ask"

    @extend_schema(
        request=AskRequest, responses={200: AskResponse, (200, "text/event-stream"): StreamEvent, 429: None, 503: None}
    )
    def post(self, request):
        body = AskRequest(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            slot = AnswerSlot.take(request.user)
        except ServerBusy:
            metrics.REFUSED_BUSY.inc()
            _, waiting = queueing.ANSWERS.depth()
            return busy_response(ServerBusyAnswering(retry_after=queueing.retry_after(waiting)))
        if slot is None:
            raise TooManyAnswers()
        ticket = queueing.ANSWERS.join(request.user.pk)
        try:
            return self.answer(body.validated_data, request.user, slot, ticket)
        except BaseException:
            ticket.leave()
            slot.release()
            raise

    def answer(self, data, user, slot: AnswerSlot, ticket: queueing.Ticket):
        """The answer, holding `slot` and its place in the answer queue
        (generation/queueing.py) until it ends: a streamed one gives both back
        when its stream ends or its response is closed. An answer that must
        wait streams its place (`queued` events) first; one not streamed
        waits here, and past RAG_ANSWER_MAX_WAIT is a 503 with Retry-After."""
        events = services.ask_stream(
            data.get("question", ""),
            user=user,
            conversation_id=data.get("conversation_id"),
            collections=data.get("collection") or None,
            edit_of=data.get("edit_of"),
            again_of=data.get("again_of"),
            documents=data.get("document") or None,
        )
        if data["stream"] and ticket.position() > 0:
            response = StreamingHttpResponse(
                HeldStream(queued_sse(ticket, events, slot), slot, events.close, ticket.leave),
                content_type="text/event-stream",
            )
            return _no_buffering(response)
        if not data["stream"]:
            try:
                for _ in queueing.waiting(ticket):
                    slot.refresh()
            except queueing.WaitedTooLong as exc:
                events.close()
                slot.release()
                return busy_response(ServerBusyAnswering(str(exc), exc.retry_after))
        try:
            first = next(events)  # validation and conversation errors surface here, as 4xx
        except SearchError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except GeneratorUnavailable as exc:
            raise unavailable(exc) from None
        if data["stream"]:
            response = StreamingHttpResponse(
                HeldStream(sse(first, events, ticket.position_at_arrival), slot, events.close, ticket.leave),
                content_type="text/event-stream",
            )
            return _no_buffering(response)
        try:
            for event in events:
                slot.refresh()  # a long answer that is still moving keeps its slot
                if event["event"] == "done":
                    return Response(event["result"].for_caller())
        except GeneratorUnavailable as exc:
            raise unavailable(exc) from None
        finally:
            events.close()
            ticket.leave()
            slot.release()
        raise RuntimeError("the answer stream ended without a result")


def _no_buffering(response):
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let proxies pass tokens through at once
    return response


class ServiceUnavailable(APIException):
    status_code = 503
    default_detail = "The answer generator is unavailable; try again shortly."


FAILED = "The answer could not be completed; try again."


def unavailable(exc: GeneratorUnavailable) -> ServiceUnavailable:
    """The 503 for a generator failure. Its detail (the server's address, the
    error's class) goes to the log, not to the caller."""
    log.warning("Answer generator unavailable: %s", exc)
    return ServiceUnavailable()


def queued_sse(ticket: queueing.Ticket, events, slot: AnswerSlot):
    """The stream of an answer that waits: its place (`queued`, as it
    changes), then the answer's events; what would have been a 4xx before
    the stream began is an `error` event now."""
    try:
        for position in queueing.waiting(ticket):
            slot.refresh()
            yield _sse("queued", {"position": position})
        first = next(events)
    except queueing.WaitedTooLong as exc:
        yield _sse("error", {"detail": str(exc), "retry_after": exc.retry_after})
        return
    except (SearchError, LookupError) as exc:
        yield _sse("error", {"detail": str(exc)})
        return
    except GeneratorUnavailable as exc:
        yield _sse("error", {"detail": unavailable(exc).detail})
        return
    yield from sse(first, events, ticket.position_at_arrival)


def sse(first, events, position: int = 0):
    """Server-Sent Events, one per event of the answer stream (`start` with
    the answer's place when it was asked); a failure mid-stream becomes an
    `error` event (the status is already sent) with a message for the
    reader, the detail logged."""
    try:
        for event in itertools.chain([first], events):
            payload = {k: v for k, v in event.items() if k != "event"}
            if event["event"] == "done":
                payload = event["result"].for_caller()
            elif event["event"] == "start":
                payload["position"] = position
            yield _sse(event["event"], payload)
    except GeneratorUnavailable as exc:
        yield _sse("error", {"detail": unavailable(exc).detail})
    except Exception:
        log.exception("The answer stream failed")
        yield _sse("error", {"detail": FAILED})


def _sse(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
