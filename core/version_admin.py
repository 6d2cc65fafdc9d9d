"""What the admin pages of model versions share (retriever versions,
generator versions): rows nobody adds or deletes by hand, a coloured status,
and a confirmation page that starts a fine-tuning run. The work happens in
Celery tasks; these views only queue it."""

from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods


class VersionAdmin(admin.ModelAdmin):
    finetune_title = "Start a fine-tuning run?"
    run_noun = "Fine-tuning run"

    class Media:
        css = {"all": ["ragsite/admin.css"]}

    def run_context(self) -> dict:
        """What the confirmation page shows: the corpus (with `problem` when a run would stop at once), the budget."""
        raise NotImplementedError

    def queue_run(self):
        """Create the version row of a new run and queue its task (inside a transaction); return the row."""
        raise NotImplementedError

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _url_name(self, view: str) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_{view}"

    def get_urls(self):
        start = self.admin_site.admin_view(require_http_methods(["GET", "POST"])(self.start_finetune))
        return [path("finetune/", start, name=self._url_name("finetune")), *super().get_urls()]

    def start_finetune(self, request):
        """GET: what a run would start from, its budget, and a button to start
        it (or why it would stop at once); POST: queue the run."""
        changelist = "admin:" + self._url_name("changelist")
        if not self.has_change_permission(request):
            messages.error(request, "You may not start a fine-tuning run.")
            return redirect(changelist)
        if request.method == "GET":
            opts = self.model._meta
            context = {
                **self.admin_site.each_context(request),
                "opts": opts,
                "title": self.finetune_title,
                **self.run_context(),
            }
            return TemplateResponse(request, f"admin/{opts.app_label}/{opts.model_name}/finetune_confirm.html", context)
        with transaction.atomic():
            version = self.queue_run()
        messages.success(request, f"{self.run_noun} {version.name} queued; its progress shows here.")
        return redirect(changelist)

    def version_to_switch(self, request, queryset, switchable):
        """The one selected version, if it can be switched in (`switchable(version)`);
        else None, with a message saying why not."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to switch to.", messages.WARNING)
            return None
        version = queryset.get()
        if version.is_active:
            self.message_user(request, f"{version.name} is already serving.", messages.INFO)
            return None
        if not switchable(version):
            state = version.get_status_display().lower()
            self.message_user(request, f"{version.name} is {state}: it cannot be switched in.", messages.ERROR)
            return None
        return version

    @admin.display(description="Created", ordering="created")
    def created_shown(self, version):
        """The date and time in one short line (a list must fit 1280 px)."""
        return date_format(timezone.localtime(version.created), "j M Y, H:i")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, version):  # coloured by ragsite/admin.css (the CSP allows no style attributes)
        return format_html(
            '<b class="rag-status rag-status-{}" title="{}">{}</b>',
            version.status,
            version.error[:300],
            version.get_status_display(),
        )
