"""Retriever versions: their held-out metrics, a run started from here, and
switching search to any version (a rollback is a switch to an earlier one).
The work happens in Celery tasks; these views only queue it."""

from django.contrib import admin
from django.db import transaction
from django.utils.html import format_html, format_html_join

from core.broker import enqueue_safely
from core.version_admin import VersionAdmin
from retrieval import versions
from retrieval.finetune import pipeline
from retrieval.finetune.evaluate import METRICS
from retrieval.finetune.pipeline import Options
from retrieval.models import RetrieverVersion
from retrieval.tasks import finetune_retriever

Status = RetrieverVersion.Status


def _fmt(value):
    return "—" if value is None else f"{value:.3f}"


@admin.register(RetrieverVersion)
class RetrieverVersionAdmin(VersionAdmin):
    # Eight columns and no filter column, to fit 1280 px (tests/e2e/test_version_admins_browser.py);
    # the status says which one serves ("Active").
    list_display = [
        "name",
        "status_badge",
        "recall_shown",
        "recall_bm25",
        "reranker_shown",
        "pairs_shown",
        "progress",
        "created_shown",
    ]
    actions = ["switch_to_version"]
    readonly_fields = [
        "name",
        "number",
        "path",
        "base_model",
        "status",
        "is_active",
        "stage",
        "progress_done",
        "progress_total",
        "train_documents",
        "heldout_documents",
        "train_chunks",
        "heldout_chunks",
        "pairs",
        "metrics_table",
        "duration",
        "error",
        "created",
        "updated",
        "switched_at",
    ]
    exclude = ["metrics"]

    def changelist_view(self, request, extra_context=None):
        versions.base_version()  # the packaged model is listed, so search can roll back to it
        extra_context = {**(extra_context or {}), "can_finetune": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def run_context(self) -> dict:
        return {"corpus": pipeline.corpus_summary(), "options": Options.from_settings()}

    def queue_run(self):
        version = versions.new_version(Options.from_settings().base_model)
        transaction.on_commit(lambda: enqueue_safely(finetune_retriever, version.pk))
        return version

    @admin.action(description="Switch search to this version (or roll back to it)")
    def switch_to_version(self, request, queryset):
        version = self.version_to_switch(
            request, queryset, lambda v: v.status in versions.SWITCHABLE or versions.is_stalled(v)
        )
        if version is None:
            return
        versions.switch_later(version.pk)
        self.message_user(
            request,
            f"Switching to {version.name}: its index is built in the background; "
            "search keeps using the current one until it is ready.",
        )

    @admin.display(description="Recall@10 (gain)")
    def recall_shown(self, version):
        return f"{self.recall_before(version)} → {self.recall_after(version)} ({self.gain_shown(version)})"

    @admin.display(description="Recall@10 before")
    def recall_before(self, version):
        decision = version.metrics.get("decision") or {}
        return _fmt(decision.get("serving_recall"))

    @admin.display(description="Recall@10 after")
    def recall_after(self, version):
        decision = version.metrics.get("decision") or {}
        # On the queries that decided (the real ones when there were enough), as "before".
        found = decision.get("finetuned_recall")
        return _fmt(found if found is not None else version.recall_at_10("finetuned-dense"))

    @admin.display(description="Reranker")
    def reranker_shown(self, version):
        verdict = (version.metrics.get("reranker") or {}).get("decision") or {}
        if not verdict:
            return "—"
        said = "used" if verdict.get("use") else "not used: too slow" if verdict.get("over_budget") else "not used"
        depth = f" for {verdict['depth']}" if verdict.get("depth") else ""
        return f"{said} (MRR@10 {verdict['gain']:+.1%}, {verdict.get('cost_ms_p50')} ms{depth})"

    @admin.display(description="Gain")
    def gain_shown(self, version):
        gain = version.gain
        return "—" if gain is None else f"{gain:+.1%}"

    @admin.display(description="BM25 recall@10")
    def recall_bm25(self, version):
        return _fmt(version.recall_at_10("bm25"))

    @admin.display(description="Training pairs")
    def pairs_shown(self, version):
        """Their number, by kind on hover."""
        if not version.pairs:
            return "—"
        kinds = ", ".join(f"{k} {v:,}" for k, v in version.pairs.items() if isinstance(v, int))
        total = sum(v for v in version.pairs.values() if isinstance(v, int))
        return format_html('<span title="{}">{}</span>', kinds, f"{total:,}")

    @admin.display(description="Progress")
    def progress(self, version):
        if versions.is_stalled(version):
            return f"stalled at {version.progress_done}/{version.progress_total}: switch to it again to resume"
        if version.status in (Status.TRAINING, Status.SWITCHING):
            return f"{version.stage or 'queued'} {version.progress_done}/{version.progress_total}"
        if version.status == Status.FAILED:
            return version.error.splitlines()[0][:120] if version.error else "failed"
        return "—" if version.duration is None else f"took {version.duration / 60:.1f} min"

    @admin.display(description="Held-out retrieval")
    def metrics_table(self, version):
        methods = version.metrics.get("methods") or {}
        if not methods:
            return "—"
        header = format_html_join("", "<th>{}</th>", ((m,) for m in METRICS))
        rows = format_html_join(
            "",
            "<tr><td>{}</td>{}</tr>",
            (
                (name, format_html_join("", "<td>{}</td>", ((f"{m[k]:.3f}",) for k in METRICS)))
                for name, m in methods.items()
            ),
        )
        return format_html("<table><tr><th>method</th>{}</tr>{}</table>", header, rows)
