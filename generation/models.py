from django.conf import settings
from django.db import models

from core.models import VersionRecord


class Conversation(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    current = models.ForeignKey(
        "Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The last message of the branch on show (generation/turns.py); its newest leaf when unset.",
    )
    viewed = models.JSONField(
        default=dict,
        blank=True,
        help_text="For each message id, the last message shown below it: switching back to a version shows "
        "the branch last viewed there (generation/turns.py).",
    )

    class Meta:
        ordering = ["-updated"]

    def __str__(self):
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    # The message this one follows: a question follows an answer (none: the
    # first question), an answer its question. Siblings are versions: answers
    # asked again, questions edited and sent again (generation/turns.py).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children", db_index=True
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    found = models.BooleanField(default=True, help_text="False when the documents held no answer.")
    guardrail_intervened = models.BooleanField(default=False)
    timings = models.JSONField(default=dict, blank=True)
    unsupported_spans = models.JSONField(
        default=list, blank=True, help_text="[[start, end], ...] of sentences no passage supports."
    )

    class Kind(models.TextChoices):
        GENERATED = "generated", "Generated and verified"
        QUOTED = "quoted", "Quoted evidence (the generated answer did not verify)"
        NOT_FOUND = "not_found", "Not in the documents"
        REFUSED = "refused", "Refused by the guardrail"
        STOPPED = "stopped", "Stopped by the asker (the text so far, not checked)"
        BROKEN = "broken", "Interrupted by a failure (the text so far, not checked)"

    kind = models.CharField(
        max_length=16, choices=Kind.choices, blank=True, help_text="What the answer policy showed (assistant messages)."
    )
    generated = models.TextField(blank=True, help_text="The model's own text, kept for audit when it was not shown.")
    notice = models.TextField(blank=True, help_text="Why the generated text was replaced.")
    passages = models.JSONField(
        default=list, blank=True, help_text="The closest passages, shown when nothing answered."
    )
    helpful = models.BooleanField(
        null=True, blank=True, help_text="The asker's verdict on the answer (None: not given)."
    )
    created = models.DateTimeField(auto_now_add=True)

    # Set on a new message to store it as a first question (an edit of the
    # conversation's first one) rather than after the branch on show.
    starts_branch = False

    class Meta:
        ordering = ["created", "pk"]

    def __str__(self):
        return f"{self.role}: {self.content[:60]}"

    def save(self, *args, **kwargs):
        """A new message without a parent follows the last message of the
        branch on show, which it then ends (a turn added at the end)."""
        follows = self._state.adding and self.parent_id is None and not self.starts_branch
        if follows:
            conversation = Conversation.objects.filter(pk=self.conversation_id).values_list("current", flat=True)
            last = conversation.first() or (
                Message.objects.filter(conversation_id=self.conversation_id)
                .order_by("-pk")
                .values_list("pk", flat=True)
                .first()
            )
            self.parent_id = last
        super().save(*args, **kwargs)
        if follows:
            Conversation.objects.filter(pk=self.conversation_id).update(current=self.pk)


class Citation(models.Model):
    """One numbered source of an answer and the spans of the answer it supports."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="citations")
    number = models.PositiveIntegerField()
    chunk = models.ForeignKey("ingestion.Chunk", null=True, on_delete=models.SET_NULL, related_name="+")
    document = models.ForeignKey("ingestion.Document", null=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=300)
    filename = models.CharField(max_length=255)
    page = models.PositiveIntegerField(null=True, blank=True)
    quote = models.TextField()
    spans = models.JSONField(default=list, help_text="[[start, end], ...] of the answer text this passage supports.")
    score = models.FloatField(default=0.0)
    highlight = models.JSONField(
        default=list, blank=True, help_text="[[start, end], ...] of the quote: the evidence sentence(s) cited."
    )
    withdrawn = models.BooleanField(default=False, help_text="Its document was deleted: the quote is gone.")
    helpful = models.BooleanField(
        null=True, blank=True, help_text="The asker's verdict on this source (None: not given)."
    )
    opened = models.DateTimeField(null=True, blank=True, help_text="When the asker first opened this source.")

    class Meta:
        ordering = ["message_id", "number"]

    def as_dict(self):
        return {
            "number": self.number,
            "document_id": self.document_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "filename": self.filename,
            "page": self.page,
            "quote": self.quote,
            "spans": self.spans,
            "score": self.score,
            "highlight": self.highlight,
            "withdrawn": self.withdrawn,
            "helpful": self.helpful,
        }


class GuardrailEvent(models.Model):
    class Direction(models.TextChoices):
        QUESTION = "question", "Question"
        ANSWER = "answer", "Answer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    direction = models.CharField(max_length=16, choices=Direction.choices)
    score = models.FloatField()
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]


class GeneratorVersion(VersionRecord):
    """An answer model the llama.cpp engine can serve: the packaged GGUF
    ("packaged", number 0) or a fine-tuned version ("v1", "v2", ...) with the
    report of its run (generation/finetune/)."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        EVALUATED = "evaluated", "Evaluated (better; not switched in)"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        REJECTED = "rejected", "Rejected (not better)"
        FAILED = "failed", "Failed"

    path = models.CharField(max_length=500, help_text="The GGUF file the llama.cpp engine loads.")
    checkpoint = models.CharField(max_length=500, blank=True, help_text="The Hugging Face checkpoint it came from.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING, db_index=True)
    is_active = models.BooleanField(default=False, help_text="Answers use this model.")
    stage = models.CharField(max_length=32, blank=True, help_text="The running step, while training.")
    examples = models.JSONField(default=dict, blank=True, help_text="Training examples by kind, and what was dropped.")
    training = models.JSONField(default=dict, blank=True, help_text="Steps, tokens per second, the loss curve.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out answers before and after, the decision.")
    durations = models.JSONField(default=dict, blank=True, help_text="Seconds by stage.")

    class Meta(VersionRecord.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_generator"
            ),
        ]

    def measure(self, side: str, name: str) -> float | None:
        """A held-out answer measure ("holds_fact", ...) of the serving model
        ("before") or of this one ("after")."""
        value = self.metrics.get(side, {}).get(name)
        return None if value is None else float(value)


class AnswerabilityVersion(VersionRecord):
    """An answerability model fitted on the corpus (generation/fitting.py):
    the "not in the documents" gate's coefficients and threshold, in the
    artifact at `path` (generation/answerability.py), with the probes it was
    fitted on and its held-out precision and recall. With none active, the
    packaged coefficients of generation/gate.py decide."""

    class Status(models.TextChoices):
        FITTING = "fitting", "Fitting"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        REJECTED = "rejected", "Rejected (not better on held-out probes)"
        FAILED = "failed", "Failed"

    path = models.CharField(max_length=500, help_text="The artifact (JSON) answers load.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.FITTING, db_index=True)
    is_active = models.BooleanField(default=False, help_text="Answers decide with this model.")
    stage = models.CharField(max_length=32, blank=True, help_text="The running step, while fitting.")
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was fitted (what changed).")
    retriever = models.CharField(max_length=64, blank=True, help_text="The serving retriever it was fitted with.")
    corpus = models.JSONField(default=dict, blank=True, help_text="Passages and documents it was fitted on.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Probes, held-out precision and recall, decision.")

    class Meta(VersionRecord.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_answerability"
            ),
        ]

    def heldout(self, name: str) -> float | None:
        """A held-out measure (precision, recall, abstention) of this model."""
        value = self.metrics.get("fitted", {}).get("heldout", {}).get(name)
        return None if value is None else float(value)
