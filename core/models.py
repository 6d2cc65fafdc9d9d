"""What the two versioned models (retrieval's RetrieverVersion, generation's
GeneratorVersion) record alike of a run: its number and name, what it
started from, progress, the split's sizes and how long it took. Abstract:
each app's table keeps its own fields too (core/version_admin.py is
their shared admin)."""

from django.db import models


class VersionRecord(models.Model):
    number = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=32, unique=True)
    base_model = models.CharField(max_length=500, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    train_documents = models.PositiveIntegerField(default=0)
    heldout_documents = models.PositiveIntegerField(default=0)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds the run took.")
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    artifact = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where the shared file store keeps what serving loads (name, sha256); empty without one.",
    )

    class Meta:
        abstract = True
        ordering = ["-number"]

    def __str__(self):
        return self.name
