from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from ingestion import services
from ingestion.models import Chunk, Collection, Document


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "is_public", "owner", "created"]
    filter_horizontal = ["members"]
    search_fields = ["name"]


class DocumentUploadForm(forms.ModelForm):
    upload = forms.FileField(
        label="File",
        allow_empty_file=True,
        help_text=f"PDF, Markdown or plain text, up to {settings.RAG_MAX_UPLOAD_MB} MB.",
    )

    class Meta:
        model = Document
        fields = ["collection", "title"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["title"].help_text = "Defaults to the file's name (or the PDF's / Markdown's own title)."
        self.fields["collection"].initial = services.get_collection().pk

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        if upload.size > settings.RAG_MAX_UPLOAD_MB * 1024 * 1024:
            raise forms.ValidationError(f"The file is larger than the {settings.RAG_MAX_UPLOAD_MB} MB limit.")
        return upload


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["ordinal", "page", "heading", "token_count", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "collection", "status_badge", "progress", "pages", "original_filename", "created"]
    list_filter = ["status", "collection"]
    search_fields = ["title", "original_filename", "sha256"]
    actions = ["reindex"]
    readonly_fields = ["original_filename", "status_badge", "error", "progress", "pages", "chunks_total", "size",
                       "sha256", "file", "owner", "created", "updated", "indexed_at"]
    inlines = [ChunkInline]

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
        upload = form.cleaned_data["upload"]
        document, created = services.add_document(  # the size limit was checked in the form
            upload, upload.name, collection=form.cleaned_data["collection"], owner=request.user,
            title=form.cleaned_data.get("title", ""),
        )
        for field in Document._meta.concrete_fields:  # the admin redirects to `obj`
            setattr(obj, field.attname, getattr(document, field.attname))
        if not created:
            messages.info(request, f"This file was already uploaded to {document.collection} as “{document.title}”.")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, document):
        colours = {"indexed": "#1e7b34", "failed": "#b3261e", "pending": "#6b7385"}
        title = document.error if document.status == Document.Status.FAILED else ""
        return format_html('<b style="color:{}" title="{}">{}</b>', colours.get(document.status, "#2456c9"), title, document.get_status_display())

    @admin.display(description="Progress")
    def progress(self, document):
        if document.status == Document.Status.FAILED:
            return document.error[:120]
        if not document.chunks_total:
            return "—"
        return f"{document.chunks_embedded}/{document.chunks_total} chunks embedded"

    @admin.action(description="Re-index selected documents")
    def reindex(self, request, queryset):
        for document in queryset:
            services.reindex(document)
        self.message_user(request, f"{queryset.count()} document(s) queued for re-indexing.")
