from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion import services
from ingestion.models import Collection, Document


class DocumentPermission(permissions.BasePermission):
    """What the admin asks: reading needs a signed-in user (who sees only the
    documents of collections they may read: readable_document); a change
    needs staff status and Django's model permission for that change, named
    per method by the view's `changes` ({"DELETE": "delete"}: ingestion.delete_document),
    in a collection the user may write to (changeable_document)."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS or not hasattr(view, request.method.lower()):
            return True  # reading; or a method the view lacks, answered 405
        change = view.changes.get(request.method)
        return bool(user.is_staff and change and user.has_perm(f"ingestion.{change}_document"))


class OcrPageSerializer(serializers.Serializer):
    page = serializers.IntegerField(help_text="The page (1-based).")
    confidence = serializers.FloatField(help_text="Tesseract's mean word confidence on it, 0-100.")
    words = serializers.IntegerField(help_text="The words OCR found on it.")


class DocumentSerializer(serializers.ModelSerializer):
    collection = serializers.SlugRelatedField(slug_field="name", read_only=True)
    url = serializers.SerializerMethodField()
    source = serializers.SlugRelatedField(
        slug_field="name",
        read_only=True,
        allow_null=True,
        help_text="The synced source that added it; null for an upload.",
    )
    ocr_pages = OcrPageSerializer(
        many=True, read_only=True, help_text="The pages read by OCR (scanned pages and images); empty for none."
    )

    class Meta:
        model = Document
        fields = [
            "id",
            "url",
            "title",
            "original_filename",
            "collection",
            "sha256",
            "size",
            "status",
            "error",
            "pages",
            "ocr_pages",
            "source",
            "chunks_total",
            "chunks_embedded",
            "created",
            "updated",
            "indexed_at",
        ]
        read_only_fields = fields

    def get_url(self, document) -> str:
        return self.context["request"].build_absolute_uri(reverse("api-document", args=[document.pk]))


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    collection = serializers.SlugField(
        max_length=100,
        required=False,
        help_text="An existing collection you may upload to (default: the default "
        "collection); an unknown name is refused, never created.",
    )
    title = serializers.CharField(max_length=300, required=False)

    def validate_file(self, file):
        try:
            services.refuse_unsupported(file.name)
        except services.UploadRejected as exc:
            raise serializers.ValidationError(str(exc)) from None
        return file


class DocumentFilter(serializers.Serializer):
    collection = serializers.SlugField(
        max_length=100, required=False, help_text="Only this collection's documents (one you may read)."
    )
    status = serializers.ChoiceField(choices=Document.Status.choices, required=False)
    ids = serializers.RegexField(
        r"^\d{1,12}(,\d{1,12}){0,99}$",
        required=False,
        help_text="Only these documents: up to 100 ids, comma-separated (to poll their progress).",
    )


class DocumentPages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class DocumentListView(generics.GenericAPIView):
    """GET: the documents of the collections the caller may read, newest first,
    a page at a time (`next`/`previous` links); POST: upload one."""

    permission_classes = [DocumentPermission]
    changes = {"POST": "add"}
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = DocumentSerializer
    pagination_class = DocumentPages

    @extend_schema(parameters=[DocumentFilter], responses=DocumentSerializer(many=True))
    def get(self, request):
        query = DocumentFilter(data=request.query_params)
        query.is_valid(raise_exception=True)
        documents = readable_documents(request, **query.validated_data)
        page = self.paginate_queryset(documents)
        return self.get_paginated_response(DocumentSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={202: DocumentSerializer, 200: DocumentSerializer, 403: None},
        description="A changed file named like a document of the collection is a new version of it (202 with that "
        "document's id) for staff who may change documents there; anyone else is refused (403, with the reason).",
    )
    def post(self, request):
        body = UploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        collection = writable_collection(request, data.get("collection"))
        try:
            document, created = services.add_document(
                data["file"], data["file"].name, collection=collection, owner=request.user, title=data.get("title", "")
            )
        except services.ReplaceRefused as exc:
            raise PermissionDenied(str(exc)) from None
        except services.UploadRejected as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from None
        payload = DocumentSerializer(document, context={"request": request}).data
        headers = {"Location": payload["url"]}
        return Response(payload, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK, headers=headers)


def writable_collection(request, name: str | None) -> Collection:
    """The named collection, if the caller may upload to it (a 400 listing
    those it may, otherwise: a name is never created by an upload); without a
    name, RAG_DEFAULT_COLLECTION (created on first use), if the caller may
    upload to it."""
    writable = Collection.objects.writable_by(request.user)
    if not name:
        collection = services.get_collection()
        if not writable.filter(pk=collection.pk).exists():
            raise PermissionDenied(
                f"You may not upload to the default collection {collection.name!r}: name one you may."
            )
        return collection
    collection = writable.filter(name=name).first()
    if collection is None:
        names = list(writable.values_list("name", flat=True)[:21])
        listed = ", ".join(names[:20]) + (", …" if len(names) > 20 else "") if names else "none"
        raise serializers.ValidationError(
            {
                "collection": [
                    f"Unknown collection {name!r}. Collections you may upload to: {listed}. "
                    "New collections are created in the admin."
                ]
            }
        )
    return collection


def readable_documents(request, collection: str | None = None, status: str | None = None, ids: str | None = None):
    """The documents the caller may read, newest first, narrowed by the
    filters; a collection they may not read is a 400 naming it unknown (as
    search does), so that its existence is not told."""
    readable = Collection.objects.readable_by(request.user)
    documents = (
        Document.objects.filter(collection__in=readable).select_related("collection").order_by("-created", "-pk")
    )
    if collection:
        if not readable.filter(name=collection).exists():
            raise serializers.ValidationError({"collection": [f"Unknown collection {collection!r}."]})
        documents = documents.filter(collection__name=collection)
    if status:
        documents = documents.filter(status=status)
    if ids:
        documents = documents.filter(pk__in=[int(pk) for pk in ids.split(",")])
    return documents


def readable_document(request, pk) -> Document:
    """The document, if the caller may read its collection; 404 otherwise."""
    readable = Collection.objects.readable_by(request.user)
    return get_object_or_404(Document.objects.select_related("collection"), pk=pk, collection__in=readable)


def changeable_document(request, pk) -> Document:
    """The document, if the caller may change documents of its collection:
    404 when they may not read it, 403 when they may read but not change it."""
    document = readable_document(request, pk)
    if not Collection.objects.writable_by(request.user).filter(pk=document.collection_id).exists():
        raise PermissionDenied("You may not change documents of this collection.")
    return document


class DocumentDetailView(APIView):
    permission_classes = [DocumentPermission]
    changes = {"DELETE": "delete"}

    @extend_schema(responses=DocumentSerializer)
    def get(self, request, pk):
        return Response(DocumentSerializer(readable_document(request, pk), context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        changeable_document(request, pk).delete()  # chunks cascade; vectors follow via signals
        return Response(status=status.HTTP_204_NO_CONTENT)


# The actions define only POST: they are not detail views (a subclass of the
# detail view once let DELETE on .../cancel/ delete the document).
class DocumentCancelView(APIView):
    """POST: stop a queued or running document (staff with ingestion.change_document)."""

    permission_classes = [DocumentPermission]
    changes = {"POST": "change"}

    @extend_schema(request=None, responses={200: DocumentSerializer, 409: None})
    def post(self, request, pk):
        document = changeable_document(request, pk)
        if not services.cancel(document):
            return Response(
                {"detail": f"The document is {document.status}; only queued or running documents can be cancelled."},
                status=status.HTTP_409_CONFLICT,
            )
        document.refresh_from_db()
        return Response(DocumentSerializer(document, context={"request": request}).data)


class DocumentReindexView(APIView):
    """POST: parse, chunk and embed the document again (staff with ingestion.change_document)."""

    permission_classes = [DocumentPermission]
    changes = {"POST": "change"}

    @extend_schema(request=None, responses={202: DocumentSerializer})
    def post(self, request, pk):
        document = changeable_document(request, pk)
        services.reindex(document)
        document.refresh_from_db()
        return Response(
            DocumentSerializer(document, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )
