from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from retrieval import services


class SearchParams(serializers.Serializer):
    q = serializers.CharField(max_length=2000, trim_whitespace=True)
    k = serializers.IntegerField(required=False, min_value=1)
    collection = serializers.ListField(child=serializers.CharField(max_length=100), required=False)


class HitSerializer(serializers.Serializer):
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
        help_text='{"dense": cosine similarity (= score), "bm25": BM25 score or null, "rrf": fused reciprocal-rank score}',
    )


class SearchResponse(serializers.Serializer):
    query = serializers.CharField()
    k = serializers.IntegerField()
    results = HitSerializer(many=True)


class SearchView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description="The query."),
            OpenApiParameter("k", int, description="How many passages (1..RAG_SEARCH_MAX_K)."),
            OpenApiParameter("collection", str, many=True, description="Limit to these collections."),
        ],
        responses=SearchResponse,
    )
    def get(self, request):
        params = SearchParams(data={**request.query_params.dict(), "collection": request.query_params.getlist("collection")})
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            hits = services.search(data["q"], user=request.user, k=data.get("k"), collections=data.get("collection") or None)
        except services.SearchError as exc:
            raise serializers.ValidationError({"detail": str(exc)}) from None
        k = data.get("k") or services.settings.RAG_SEARCH_DEFAULT_K
        return Response({"query": data["q"], "k": k, "results": [h.as_dict() for h in hits]})
