from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from core.changelists import BoundedChangelist
from ingestion import services, source_admin  # noqa: F401 (source_admin registers the sources' admin)
from ingestion.models import Chunk, Collection, Document, Source


@admin.register(Collection)
class CollectionAdmin(BoundedChangelist, admin.ModelAdmin):
    list_display = ["name", "is_public", "owner", "created"]
    filter_horizontal = ["members"]
    search_fields = ["name"]

    def get_queryset(self, request):  # the collections the user may read (a superuser: all)
        return Collection.objects.readable_by(request.user)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True

    def get_context(self, name, value, attrs):  # the browser's file picker offers the types this site reads
        return super().get_context(name, value, {"accept": ",".join(sorted(services.readable_types()[0])), **attrs})


class MultipleFileField(forms.FileField):
    """One or more files from a single input."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


class DocumentUploadForm(forms.ModelForm):
    upload = MultipleFileField(
        label="Files",
        allow_empty_file=True,
    )

    class Meta:
        model = Document
        fields = ["collection", "title"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["title"].help_text = "For a single file; defaults to the document's own title or its file name."
        self.fields["collection"].initial = services.get_collection().pk
        self.fields[
            "upload"
        ].help_text = f"One or more files: {services.readable_types()[1]}, up to {settings.RAG_MAX_UPLOAD_MB} MB each."

    def clean_upload(self):
        """The files that can be added; each refused one (too large, a type we
        do not read) is left out with its reason (`self.refused`, said after
        the upload), so one bad file does not drop the valid ones chosen with it."""
        kept, self.refused = [], []
        for upload in self.cleaned_data["upload"]:  # refused now, not failed later: nothing of it is stored
            if upload.size > settings.RAG_MAX_UPLOAD_MB * 1024 * 1024:
                self.refused.append(f"{upload.name}: larger than the {settings.RAG_MAX_UPLOAD_MB} MB limit.")
                continue
            try:
                services.refuse_unsupported(upload.name)
            except services.UploadRejected as exc:
                self.refused.append(str(exc))
                continue
            kept.append(upload)
        if not kept:
            raise forms.ValidationError(self.refused)
        return kept


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["ordinal", "page", "heading", "token_count", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0


def upload_messages(new: int, duplicates: list[tuple[str, Document]]) -> list[tuple[int, str]]:
    """What an upload did, counted: how many documents are new (queued), how
    many files were the same bytes as a document already there (each named)."""
    parts = []
    if new:
        parts.append(f"{new} new document{'s' if new != 1 else ''} queued for indexing")
    if duplicates:
        count = len(duplicates)
        parts.append(
            f"{count} duplicate{'s' if count != 1 else ''} of {'documents' if count != 1 else 'a document'} "
            "already uploaded, not added again"
        )
    said = [(messages.SUCCESS if new else messages.INFO, "; ".join(parts) + ".")]
    for name, document in duplicates:  # a failed or cancelled one is retried by add_document: its status says so
        said.append(
            (
                messages.INFO,
                f"{name} is the same file as “{document.title}” in {document.collection} "
                f"({document.get_status_display().lower()}).",
            )
        )
    return said


class OcrFilter(admin.SimpleListFilter):
    """Documents by how their text was read: by OCR, and by OCR with a page below RAG_OCR_LOW_CONFIDENCE."""

    title = "OCR"
    parameter_name = "ocr"

    def lookups(self, request, model_admin):
        return [("read", "Read by OCR"), ("low", "Low OCR confidence")]

    def queryset(self, request, queryset):
        if self.value() == "read":
            return queryset.filter(ocr_lowest__isnull=False)
        if self.value() == "low":
            return queryset.filter(ocr_lowest__lt=settings.RAG_OCR_LOW_CONFIDENCE)
        return queryset


class ReadableCollectionFilter(admin.RelatedFieldListFilter):
    """The list's collection filter names only the collections the user may read."""

    def field_choices(self, field, request, model_admin):
        return [(c.pk, str(c)) for c in Collection.objects.readable_by(request.user).order_by("name")]


class ReadableSourceFilter(admin.RelatedFieldListFilter):
    """The list's source filter names only the sources of collections the user may read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.empty_value_display = "None (uploaded)"

    def field_choices(self, field, request, model_admin):
        sources = Source.objects.filter(collection__in=Collection.objects.readable_by(request.user))
        return [(s.pk, str(s)) for s in sources.order_by("name")]


# The most documents one progress request asks about (a page of the list holds 100).
PROGRESS_IDS = 200


@admin.register(Document)
class DocumentAdmin(BoundedChangelist, admin.ModelAdmin):
    class Media:
        css = {"all": ["ragsite/admin.css"]}
        # Live status on the list (polls progress_view) and a drop zone on the upload form.
        js = ["ragsite/admin-documents.js"]

    # Six columns that fit 1280 px: the file's name, size and pages in one, progress as n/N.
    list_display = ["title", "collection", "status_badge", "progress", "file_summary", "added"]
    list_filter = ["status", ("collection", ReadableCollectionFilter), OcrFilter, ("source", ReadableSourceFilter)]
    # The title, the file name, the hash, or words of the text itself (the passages).
    search_fields = ["title", "original_filename", "sha256", "chunks__text"]
    search_help_text = "Finds a title, a file name, or words in the documents' text."
    actions = ["reindex", "cancel"]
    readonly_fields = [
        "original_filename",
        "status_badge",
        "error",
        "progress",
        "pages",
        "ocr_summary",
        "source",
        "chunks_total",
        "size",
        "sha256",
        "file",
        "owner",
        "created",
        "updated",
        "indexed_at",
    ]
    inlines = [ChunkInline]

    # Staff see and change only the documents of the collections they may read
    # (Collection.objects.readable_by; the REST API applies the same rule), and
    # upload only to those; what each may do there is their model permissions.
    def get_queryset(self, request):
        return super().get_queryset(request).filter(collection__in=Collection.objects.readable_by(request.user))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "collection":
            kwargs["queryset"] = Collection.objects.writable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = DocumentUploadForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["upload", "collection", "title"]
        return ["title", "collection", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        uploads = form.cleaned_data["upload"]
        title = form.cleaned_data.get("title", "") if len(uploads) == 1 else ""
        documents, duplicates, refused = [], [], []
        for upload in uploads:  # size and type were checked in the form
            try:
                document, created = services.add_document(
                    upload, upload.name, collection=form.cleaned_data["collection"], owner=request.user, title=title
                )
            except services.UploadRejected as exc:  # this file alone (a new version the user may not make)
                refused.append(str(exc))
                continue
            documents.append(document)
            if not created:
                duplicates.append((upload.name, document))
        if documents:
            for level, text in upload_messages(len(documents) - len(duplicates), duplicates):
                messages.add_message(request, level, text)
            for field in Document._meta.concrete_fields:  # for response_add: the (last) document
                setattr(obj, field.attname, getattr(documents[-1], field.attname))
        for reason in [*getattr(form, "refused", []), *refused]:
            messages.error(request, f"Not uploaded: {reason}")

    def log_addition(self, request, obj, message):
        if obj.pk:  # nothing to log when every file of the upload was refused
            super().log_addition(request, obj, message)

    def get_urls(self):
        progress = path("progress/", self.admin_site.admin_view(self.progress_view), name="ingestion_document_progress")
        return [progress, *super().get_urls()]

    def progress_view(self, request):
        """GET ?ids=1,2,…: the status and progress cells of those documents, as
        the list renders them (the same methods), for the list's script to
        refresh in place; only documents this user may see in the admin."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        ids = [int(pk) for pk in request.GET.get("ids", "").split(",") if pk.isdigit() and len(pk) <= 12][:PROGRESS_IDS]
        documents = self.get_queryset(request).filter(pk__in=ids)
        return JsonResponse(
            {
                "documents": {
                    document.pk: {
                        "status": document.status,
                        "finished": document.is_finished,
                        "status_badge": self.status_badge(document),
                        "progress": self.progress(document),
                    }
                    for document in documents
                }
            }
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, document):  # coloured by ragsite/admin.css (the CSP allows no style attributes)
        title = document.error if document.status == Document.Status.FAILED else ""
        return format_html(
            '<b class="rag-status rag-status-{}" data-status="{}" title="{}">{}</b>',
            document.status,
            document.status,
            title,
            document.get_status_display(),
        )

    @admin.display(description="Progress")
    def progress(self, document):
        if document.status == Document.Status.FAILED:
            return document.error[:120]
        if not document.chunks_total:
            return "—"
        return f"{document.chunks_embedded}/{document.chunks_total} chunks embedded"

    @admin.display(description="File", ordering="original_filename")
    def file_summary(self, document):
        pages = f" · {document.pages} page{'s' if document.pages != 1 else ''}" if document.pages else ""
        summary = f"{document.original_filename} · {filesizeformat(document.size)}{pages}"
        if not document.ocr_pages:
            return summary
        low = document.low_confidence_pages(settings.RAG_OCR_LOW_CONFIDENCE)
        if low:
            return format_html(
                '{} · <b class="rag-ocr-low" title="{}">OCR: {} low</b>',
                summary,
                self.ocr_summary(document),
                f"{len(low)} page{'s' if len(low) != 1 else ''}",
            )
        return f"{summary} · OCR"

    @admin.display(description="OCR")
    def ocr_summary(self, document):
        """Which pages OCR read, how sure it was, and the pages below RAG_OCR_LOW_CONFIDENCE."""
        read = document.ocr_pages
        if not read:
            return "—"
        mean = sum(page["confidence"] for page in read) / len(read)
        said = (
            f"{len(read)} page{'s' if len(read) != 1 else ''} read by OCR ({settings.RAG_OCR_LANGUAGES}), "
            f"mean confidence {mean:.0f}%."
        )
        low = document.low_confidence_pages(settings.RAG_OCR_LOW_CONFIDENCE)
        if low:
            pages = ", ".join(f"page {page['page']} ({page['confidence']:.0f}%)" for page in low[:20])
            said += (
                f" Below {settings.RAG_OCR_LOW_CONFIDENCE}%: {pages}{' …' if len(low) > 20 else ''}; check those pages."
            )
        return said

    @admin.display(description="Added", ordering="created")
    def added(self, document):
        return date_format(timezone.localtime(document.created), "j M Y")

    def response_add(self, request, obj, post_url_continue=None):
        """After an upload, where its progress shows (save_model said what was
        new and what was a duplicate; Django's own "was added successfully"
        would be wrong for a duplicate): the list, or the add form again, or
        the one document ("Save and continue editing" with one file)."""
        if "_addanother" in request.POST or not self.has_view_or_change_permission(request):
            return redirect("admin:ingestion_document_add")  # an uploader who may only add sees the form again
        if "_continue" in request.POST and len(request.FILES.getlist("upload")) == 1 and obj.pk:
            return redirect("admin:ingestion_document_change", obj.pk)
        return redirect("admin:ingestion_document_changelist")

    @admin.action(description="Cancel selected documents (queued or running)", permissions=["change"])
    def cancel(self, request, queryset):
        count = sum(services.cancel(document) for document in queryset)
        self.message_user(request, f"{count} document(s) cancelled.")

    @admin.action(description="Re-index selected documents", permissions=["change"])
    def reindex(self, request, queryset):
        for document in queryset:
            services.reindex(document)
        self.message_user(request, f"{queryset.count()} document(s) queued for re-indexing.")
