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

from generation import services
from generation.engines.base import GeneratorUnavailable
from generation.throttling import AnswerSlot, HeldStream, ServerBusy
from ingestion.models import MAX_ID
from retrieval.search import SearchError

log = logging.getLogger(__name__)


class AskRequest(serializers.Serializer):
    question = serializers.CharField(max_length=services.MAX_QUESTION_CHARS)
    conversation_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)
    collection = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    stream = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Stream Server-Sent Events: start, token*, retract?, replace?, done (with citations).",
    )


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


class AskView(APIView):
    """Answers are limited apart from searches: the "ask" throttle rate
    (API_ASK_RATE_LIMIT, per user), and RAG_MAX_ANSWERS_PER_USER in flight
    (generation.throttling), so that a few users' answers cannot take every
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
            raise ServerBusyAnswering() from None
        if slot is None:
            raise TooManyAnswers()
        try:
            return self.answer(body.validated_data, request.user, slot)
        except BaseException:
            slot.release()
            raise

    def answer(self, data, user, slot: AnswerSlot):
        """The answer, holding `slot` until it ends: a streamed one gives the
        slot back when its stream ends or its response is closed."""
        events = services.ask_stream(
            data["question"],
            user=user,
            conversation_id=data.get("conversation_id"),
            collections=data.get("collection") or None,
        )
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
                HeldStream(sse(first, events), slot, events.close), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # let proxies pass tokens through at once
            return response
        try:
            for event in events:
                slot.refresh()  # a long answer that is still moving keeps its slot
                if event["event"] == "done":
                    return Response(event["result"].for_caller())
        except GeneratorUnavailable as exc:
            raise unavailable(exc) from None
        finally:
            events.close()
            slot.release()
        raise RuntimeError("the answer stream ended without a result")


class ServiceUnavailable(APIException):
    status_code = 503
    default_detail = "The answer generator is unavailable; try again shortly."


FAILED = "The answer could not be completed; try again."


def unavailable(exc: GeneratorUnavailable) -> ServiceUnavailable:
    """The 503 for a generator failure. Its detail (the server's address, the
    error's class) goes to the log, not to the caller."""
    log.warning("Answer generator unavailable: %s", exc)
    return ServiceUnavailable()


def sse(first, events):
    """Server-Sent Events, one per event of the answer stream; a failure
    mid-stream becomes an `error` event (the status is already sent) with a
    message for the reader, the detail logged."""
    try:
        for event in itertools.chain([first], events):
            payload = {k: v for k, v in event.items() if k != "event"}
            if event["event"] == "done":
                payload = event["result"].for_caller()
            yield _sse(event["event"], payload)
    except GeneratorUnavailable as exc:
        yield _sse("error", {"detail": unavailable(exc).detail})
    except Exception:
        log.exception("The answer stream failed")
        yield _sse("error", {"detail": FAILED})


def _sse(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
