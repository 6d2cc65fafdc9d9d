"""The admin of synced sources (ingestion/sync.py): staff register a folder
for a collection, see each source's last sync (when, how long, what it
found, which files failed and why) and sync it now. The sync itself runs in
a worker; these views only queue it."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from core.changelists import BoundedChangelist
from ingestion.models import Collection, Document, Source
from ingestion.sources import location_problem

COUNT_WORDS = {
    "added": "added",
    "changed": "changed",
    "renamed": "moved or renamed",
    "withdrawn": "withdrawn",
    "unchanged": "unchanged",
    "failed": "failed",
    "skipped": "not a document type",
}


class SourceForm(forms.ModelForm):
    class Meta:
        model = Source
        fields = ["name", "collection", "kind", "location", "enabled", "interval_minutes"]

    def clean_location(self):
        location = self.cleaned_data["location"].strip()
        if problem := location_problem(location, settings.RAG_SYNC_ROOTS):
            raise forms.ValidationError(problem)
        return location


@admin.register(Source)
class SourceAdmin(BoundedChangelist, admin.ModelAdmin):
    class Media:
        css = {"all": ["ragsite/admin.css"]}

    form = SourceForm
    # Four columns that fit 1280 px beside the admin's sidebars: the folder and collection under the name.
    list_display = ["summary", "state_badge", "last_sync", "counts_summary"]
    list_display_links = ["summary"]
    list_filter = ["state", "enabled"]
    search_fields = ["name", "location"]
    actions = ["sync_now", "sync_allowing_empty"]
    readonly_fields = [
        "state_badge",
        "reason",
        "last_sync",
        "counts_summary",
        "errors_list",
        "documents_summary",
        "created",
    ]

    def get_queryset(self, request):  # the sources of the collections the user may read
        return super().get_queryset(request).filter(collection__in=Collection.objects.readable_by(request.user))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "collection":
            kwargs["queryset"] = Collection.objects.writable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        editable = ["name", "collection", "kind", "location", "enabled", "interval_minutes"]
        return editable if obj is None else [*editable, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def response_add(self, request, obj, post_url_continue=None):
        """A new source is synced at once (its first sync fills the collection)."""
        _queue(obj.pk)
        messages.info(request, f"The first sync of {obj.name} is queued; its counts show here when it ends.")
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        sync = self.admin_site.admin_view(require_POST(self.sync_view))
        return [path("<int:source_id>/sync/", sync, name="ingestion_source_sync"), *super().get_urls()]

    def sync_view(self, request, source_id):
        """The change page's "Sync now" button."""
        source = get_object_or_404(self.get_queryset(request), pk=source_id)
        if not self.has_change_permission(request, source):
            messages.error(request, "You may not sync this source.")
        else:
            _queue(source.pk, allow_empty=request.POST.get("allow_empty") == "1")
            messages.success(request, f"A sync of {source.name} is queued; its counts show here when it ends.")
        return redirect("admin:ingestion_source_change", source.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "sync_url": reverse("admin:ingestion_source_sync", args=[object_id])}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Sync selected sources now", permissions=["change"])
    def sync_now(self, request, queryset):
        for source in queryset:
            _queue(source.pk)
        self.message_user(request, f"{queryset.count()} source(s) queued for a sync.")

    @admin.action(
        description="Sync now, withdrawing what is gone even if the folder lists empty", permissions=["change"]
    )
    def sync_allowing_empty(self, request, queryset):
        for source in queryset:
            _queue(source.pk, allow_empty=True)
        self.message_user(request, f"{queryset.count()} source(s) queued; an empty folder withdraws its documents.")

    @admin.display(description="Source", ordering="name")
    def summary(self, source):
        return format_html(
            '{}<br><span class="rag-source-where">{} → {}</span>', source.name, source.location, source.collection
        )

    @admin.display(description="State", ordering="state")
    def state_badge(self, source):  # coloured by ragsite/admin.css
        return format_html(
            '<b class="rag-status rag-source-{}" title="{}">{}</b>',
            source.state,
            source.reason,
            "Syncing" if source.syncing_since else source.get_state_display(),
        )

    @admin.display(description="Last sync", ordering="last_sync_at")
    def last_sync(self, source):
        if not source.last_sync_at:
            return "never"
        when = date_format(timezone.localtime(source.last_sync_at), "j M Y, H:i")
        return f"{when} ({source.last_duration:.1f} s)" if source.last_duration is not None else when

    @admin.display(description="Last sync found")
    def counts_summary(self, source):
        counts = source.last_counts or {}
        parts = [f"{counts[key]:,} {words}" for key, words in COUNT_WORDS.items() if counts.get(key)]
        if source.state == Source.State.PAUSED:
            return f"Paused: {source.reason}"
        return " · ".join(parts) or "—"

    @admin.display(description="Files not taken")
    def errors_list(self, source):
        errors = source.last_errors or []
        if not errors:
            return "—"
        return format_html(
            "<ul class='rag-source-errors'>{}</ul>",
            format_html_join("", "<li><code>{}</code>: {}</li>", ((e["path"], e["error"]) for e in errors)),
        )

    @admin.display(description="Documents")
    def documents_summary(self, source):
        documents = Document.objects.filter(source=source)
        failed = documents.filter(status=Document.Status.FAILED)
        url = reverse("admin:ingestion_document_changelist") + f"?source__id__exact={source.pk}"
        return format_html(
            '<a href="{}">{} document(s)</a>, {} indexed, {} failed (each says why).',
            url,
            documents.count(),
            documents.filter(status=Document.Status.INDEXED).count(),
            failed.count(),
        )


def _queue(source_id: int, allow_empty: bool = False) -> None:
    from core.broker import enqueue_safely
    from ingestion.tasks import sync_source

    enqueue_safely(sync_source, source_id, allow_empty)
