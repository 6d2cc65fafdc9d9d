from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.models import MAX_ID
from retrieval import search


class SearchParams(serializers.Serializer):
    q = serializers.CharField(max_length=2000, trim_whitespace=True)
    k = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=search.MAX_OFFSET, default=0)
    collection = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    document = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    by = serializers.ChoiceField(choices=["passage", "document"], required=False, default="passage")
    per_document = serializers.IntegerField(required=False, min_value=0, max_value=10, default=2)


class PassageSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.FloatField()
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    title = serializers.CharField()
    filename = serializers.CharField()
    collection = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    heading = serializers.CharField()
    char_start = serializers.IntegerField()
    char_end = serializers.IntegerField()
    text = serializers.CharField()
    scores = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text='{"dense": cosine similarity (= score)}. Scores that depend on corpus-wide statistics (BM25, the '
        "fused rank score) are not given: they would reveal documents the caller cannot read.",
    )


class HitSerializer(PassageSerializer):
    passages = PassageSerializer(
        many=True,
        required=False,
        help_text="With by=document: more passages of this result's document, best first (at most per_document).",
    )


class SearchResponse(serializers.Serializer):
    query = serializers.CharField()
    k = serializers.IntegerField()
    offset = serializers.IntegerField()
    next = serializers.URLField(allow_null=True, help_text="The next page of results, when this page is full.")
    results = HitSerializer(many=True)


class SearchView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description="The query."),
            OpenApiParameter("k", int, description="How many passages (1..RAG_SEARCH_MAX_K)."),
            OpenApiParameter("offset", int, description="Skip this many results (pagination; at most 1000)."),
            OpenApiParameter("collection", str, many=True, description="Limit to these collections."),
            OpenApiParameter("document", int, many=True, description="Limit to these document ids."),
            OpenApiParameter("since", str, description="Documents added on or after this date (YYYY-MM-DD)."),
            OpenApiParameter("until", str, description="Documents added on or before this date (YYYY-MM-DD)."),
            OpenApiParameter(
                "by",
                str,
                enum=["passage", "document"],
                description="passage (default): the k best passages. document: the k best documents, each as its "
                "best passage with more of its passages in `passages` (no offset).",
            ),
            OpenApiParameter(
                "per_document", int, description="With by=document: more passages per document (0..10, default 2)."
            ),
        ],
        responses=SearchResponse,
    )
    def get(self, request):
        query = request.query_params
        params = SearchParams(
            data={**query.dict(), "collection": query.getlist("collection"), "document": query.getlist("document")}
        )
        params.is_valid(raise_exception=True)
        data = params.validated_data
        k = data.get("k") or settings.RAG_SEARCH_DEFAULT_K
        narrowing = {
            "user": request.user,
            "collections": data.get("collection") or None,
            "documents": data.get("document") or None,
            "since": data.get("since"),
            "until": data.get("until"),
        }
        if data["by"] == "document":
            try:
                results = search.search_documents(
                    data["q"], k=k, per_document=data["per_document"], offset=data["offset"], **narrowing
                )
            except search.SearchError as exc:
                raise serializers.ValidationError({"detail": str(exc)}) from None
            return Response({"query": data["q"], "k": k, "offset": 0, "next": None, "results": results})
        try:
            hits = search.search(data["q"], k=k, offset=data["offset"], **narrowing)
        except search.SearchError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        following = None
        if len(hits) == k and data["offset"] + k <= search.MAX_OFFSET:
            following = query.copy()
            following["offset"] = str(data["offset"] + k)
            following = request.build_absolute_uri(f"{request.path}?{following.urlencode()}")
        return Response(
            {
                "query": data["q"],
                "k": k,
                "offset": data["offset"],
                "next": following,
                "results": [h.for_caller() for h in hits],
            }
        )
