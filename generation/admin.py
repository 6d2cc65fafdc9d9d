from django.contrib import admin, messages
from django.db import transaction

from core.broker import enqueue_safely
from core.changelists import BoundedChangelist
from core.transitions import stale_before
from core.version_admin import VersionAdmin
from generation import gate_versions, generator_versions
from generation.finetune.pipeline import Options
from generation.models import AnswerabilityVersion, Citation, Conversation, GeneratorVersion, GuardrailEvent, Message
from ingestion.models import Collection, Document
from retrieval.finetune import pipeline as retriever_pipeline


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GuardrailEvent)
class GuardrailEventAdmin(ReadOnlyAdmin):
    list_display = ["created", "user", "direction", "score", "text"]
    list_filter = ["direction"]


class CitationInline(admin.TabularInline):
    model = Citation
    fields = ["number", "title", "filename", "page", "score", "quote"]
    readonly_fields = fields
    extra = 0
    can_delete = False


def readable_messages(request, messages):
    """The messages a staff user may read in the admin: none of whose
    citations quotes a document of a collection they may not read (a
    superuser reads every one). Answers quote the documents they cite: the
    view permission on messages must not open private collections."""
    if request.user.is_superuser:
        return messages
    hidden = Document.objects.exclude(collection__in=Collection.objects.readable_by(request.user))
    return messages.exclude(citations__document__in=hidden)


class MessageInline(admin.StackedInline):
    model = Message
    fields = ["role", "content", "found", "guardrail_intervened", "timings"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return readable_messages(request, super().get_queryset(request))


@admin.register(Conversation)
class ConversationAdmin(BoundedChangelist, ReadOnlyAdmin):
    list_display = ["title", "user", "created", "updated"]
    inlines = [MessageInline]
    exclude = ["current"]  # a message's text, shown past the readable-message filter


@admin.register(Message)
class MessageAdmin(BoundedChangelist, ReadOnlyAdmin):
    list_display = ["conversation", "role", "content", "created"]
    # Not the closest passages of a "not found" answer (quotes of whatever documents were near),
    # nor the message it follows (its text, shown past the readable-message filter).
    exclude = ["passages", "parent"]
    inlines = [CitationInline]

    def get_queryset(self, request):
        return readable_messages(request, super().get_queryset(request))


def _share(value):
    return "\u2014" if value is None else f"{value:.3f}"


@admin.register(GeneratorVersion)
class GeneratorVersionAdmin(VersionAdmin):
    """Generator versions: held-out answers before and after, a run started
    from here, and switching answers to any version (a rollback is a switch
    to an earlier one). The work happens in Celery tasks; these views queue it."""

    finetune_title = "Start a generator fine-tuning run?"
    list_display = ["name", "status_badge", "held_out", "examples_shown", "progress", "created"]
    actions = ["switch_to_version"]  # (no filter column: a corpus has a handful of versions)
    readonly_fields = [f.name for f in GeneratorVersion._meta.fields if f.name != "id"]

    def changelist_view(self, request, extra_context=None):
        generator_versions.packaged_version()  # listed, so answers can roll back to it
        extra_context = {**(extra_context or {}), "can_finetune": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def run_context(self) -> dict:
        return {"corpus": retriever_pipeline.corpus_summary(), "options": Options.from_settings()}

    def queue_run(self):
        from generation.tasks import finetune_generator

        version = generator_versions.new_version(str(generator_versions.packaged_version().path))
        transaction.on_commit(lambda: enqueue_safely(finetune_generator, version.pk))
        return version

    @admin.action(description="Answer with this version (or roll back to it)")
    def switch_to_version(self, request, queryset):
        version = self.version_to_switch(request, queryset, lambda v: v.status in generator_versions.SWITCHABLE)
        if version is None:
            return
        generator_versions.switch_later(version.pk)
        self.message_user(request, f"Switching answers to {version.name}; every process follows within a request.")

    @admin.display(description="Held-out answers hold the fact")
    def held_out(self, version):
        before, after = version.measure("before", "holds_fact"), version.measure("after", "holds_fact")
        if after is None:
            return "\u2014"
        return f"{_share(before)} \u2192 {_share(after)} ({after - (before or 0.0):+.3f})"

    @admin.display(description="Examples")
    def examples_shown(self, version):
        kinds = version.examples.get("by_kind") or {}
        if not kinds:
            return "\u2014"
        absent = sum(n for kind, n in kinds.items() if kind.startswith("absent/"))
        return f"{sum(kinds.values())} ({absent} absent)"

    @admin.display(description="Progress")
    def progress(self, version):
        if version.status == GeneratorVersion.Status.TRAINING:
            if version.stage != "queued" and version.updated < stale_before():
                return f"stalled at {version.stage}: its worker stopped"
            return f"{version.stage or 'queued'} {version.progress_done}/{version.progress_total}"
        if version.status == GeneratorVersion.Status.FAILED:
            return version.error.splitlines()[0][:120] if version.error else "failed"
        return "\u2014" if version.duration is None else f"took {version.duration / 60:.1f} min"


@admin.register(AnswerabilityVersion)
class AnswerabilityVersionAdmin(VersionAdmin):
    """The "not in the documents" decision fitted on this corpus
    (generation/fitting.py): each fit's held-out precision and recall beside
    the serving gate's on the same probes, whether its artifact loads here,
    a fit started from here, switching one in or back to the packaged gate."""

    finetune_title = "Fit the answerability model on this corpus?"
    run_noun = "Answerability fit"
    list_display = [
        "name",
        "status_badge",
        "precision",
        "recall",
        "abstention",
        "probes",
        "loads",
        "reason",
        "progress",
    ]
    actions = ["switch_to_version", "switch_to_packaged"]
    readonly_fields = [f.name for f in AnswerabilityVersion._meta.fields if f.name != "id"]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_finetune": self.has_change_permission(request),
            "serving": gate_versions.current(),
        }
        return super().changelist_view(request, extra_context)

    def run_context(self) -> dict:
        from generation import fitting

        corpus = fitting.corpus_state()
        problem = None
        if corpus["documents"] < 2:
            problem = "Fitting needs at least 2 indexed documents: one part of them judges the fit."
        return {"corpus": {**corpus, "problem": problem}, "stale": fitting.stale()}

    def queue_run(self):
        from generation.tasks import fit_answerability

        version = gate_versions.new_version("asked from the admin")
        transaction.on_commit(lambda: enqueue_safely(fit_answerability, version.reason, version.pk))
        return version

    @admin.action(description="Decide answers with this version")
    def switch_to_version(self, request, queryset):
        switchable = (AnswerabilityVersion.Status.REJECTED, AnswerabilityVersion.Status.RETIRED)
        version = self.version_to_switch(request, queryset, lambda v: v.status in switchable)
        if version is None:
            return
        problem = gate_versions.refusal(version)
        if problem:
            self.message_user(request, f"{version.name} cannot be used: {problem}", messages.ERROR)
            return
        gate_versions.activate(version)
        self.message_user(request, f"Answers now decide with {version.name}.")

    @admin.action(description="Back to the packaged gate")
    def switch_to_packaged(self, request, queryset):
        gate_versions.deactivate()
        self.message_user(request, "Answers now decide with the packaged gate.")

    def _heldout(self, version, name):
        fitted = version.heldout(name)
        serving = version.metrics.get("serving", {}).get("heldout", {}).get(name)
        if fitted is None:
            return "\u2014"
        return f"{_share(fitted)} (serving {_share(serving)})"

    @admin.display(description="Held-out precision")
    def precision(self, version):
        return self._heldout(version, "precision")

    @admin.display(description="Held-out recall")
    def recall(self, version):
        return self._heldout(version, "recall")

    @admin.display(description="Held-out abstention")
    def abstention(self, version):
        return self._heldout(version, "abstention")

    @admin.display(description="Probes")
    def probes(self, version):
        kinds = version.metrics.get("fitted", {}).get("probes") or {}
        return ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "\u2014"

    @admin.display(description="Loads here")
    def loads(self, version):
        if version.status in (AnswerabilityVersion.Status.FITTING, AnswerabilityVersion.Status.FAILED):
            return "\u2014"
        return gate_versions.refusal(version) or "yes"

    @admin.display(description="Progress")
    def progress(self, version):
        if version.status == AnswerabilityVersion.Status.FITTING:
            if version.stage not in ("queued", "starting") and version.updated < stale_before():
                return f"stalled at {version.stage}: its worker stopped"
            return f"{version.stage or 'queued'} {version.progress_done}/{version.progress_total}"
        if version.status == AnswerabilityVersion.Status.FAILED:
            return version.error.splitlines()[0][:160] if version.error else "failed"
        return "\u2014" if version.duration is None else f"took {version.duration / 60:.1f} min"
