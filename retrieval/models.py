from django.db import models
from django.db.models import Q

from core.models import VersionRecord


class RetrieverVersion(VersionRecord):
    """An embedder that search can use: the packaged base model ("base", number
    0) or a fine-tuned version ("v1", "v2", ...) with the report of its run."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        EVALUATED = "evaluated", "Evaluated (better; not switched in)"
        SWITCHING = "switching", "Switching"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        REJECTED = "rejected", "Rejected (not better)"
        FAILED = "failed", "Failed"

    path = models.CharField(max_length=500, help_text="The sentence-transformers model folder.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING, db_index=True)
    is_active = models.BooleanField(default=False, help_text="Search uses this model's index.")
    stage = models.CharField(max_length=32, blank=True, help_text="The running step, while training or switching.")
    switch_from = models.CharField(
        max_length=16, blank=True, help_text="The status a switch restores if it fails or stalls."
    )
    train_chunks = models.PositiveIntegerField(default=0)
    heldout_chunks = models.PositiveIntegerField(default=0)
    pairs = models.JSONField(
        default=dict, blank=True, help_text="Training pairs by method (llm, keyword, situation, ict, feedback)."
    )
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out retrieval before and after.")

    class Meta(VersionRecord.Meta):
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_retriever"),
        ]

    def recall_at_10(self, method: str) -> float | None:
        value = self.metrics.get("methods", {}).get(method, {}).get("recall@10")
        return None if value is None else float(value)

    @property
    def gain(self) -> float | None:
        """Relative recall@10 gain over the model serving when it was evaluated."""
        return self.metrics.get("decision", {}).get("gain")


class IndexRegistryState(models.Model):
    """The index registry when the indexes are on Milvus (retrieval/registry.py):
    {"active": {...}, "staging": {...} or null}, as the FAISS registry file holds."""

    key = models.CharField(max_length=32, unique=True)
    state = models.JSONField(default=dict)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.state.get('active', {}).get('name')}"
