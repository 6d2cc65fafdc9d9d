from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import services
from retrieval.services import SearchError


class AskRequest(serializers.Serializer):
    question = serializers.CharField(max_length=2000)
    conversation_id = serializers.IntegerField(required=False, allow_null=True)
    collection = serializers.ListField(child=serializers.CharField(max_length=100), required=False)


class CitationSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    document_id = serializers.IntegerField(allow_null=True)
    chunk_id = serializers.IntegerField(allow_null=True)
    title = serializers.CharField()
    filename = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    quote = serializers.CharField()
    spans = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    score = serializers.FloatField()


class AskResponse(serializers.Serializer):
    answer = serializers.CharField()
    citations = CitationSerializer(many=True)
    passages = serializers.ListField(child=serializers.DictField())
    found = serializers.BooleanField()
    guardrail = serializers.DictField()
    conversation_id = serializers.IntegerField()
    message_id = serializers.IntegerField()
    timings = serializers.DictField()


class AskView(APIView):
    @extend_schema(request=AskRequest, responses=AskResponse)
    def post(self, request):
        body = AskRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            result = services.ask(
                data["question"],
                user=request.user,
                conversation_id=data.get("conversation_id"),
                collections=data.get("collection") or None,
            )
        except SearchError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        return Response(result.as_dict())
