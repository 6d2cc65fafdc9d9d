from django.conf import settings
from django.db import models
from django.db.models import Q

# The largest primary key (BigAutoField): an id above it is no id (and would
# overflow the database driver), so requests are refused before they query.
MAX_ID = 2**63 - 1


class CollectionQuerySet(models.QuerySet):
    def readable_by(self, user):
        """Collections whose documents `user` may search and cite: the public
        ones and the private ones the user owns or is a member of; a superuser
        reads every one. Staff status adds nothing here: it opens the admin,
        where model permissions say what a user may do, and the admin shows
        staff these same collections (ingestion/admin.py)."""
        if user is None:  # trusted callers: CLI, workers
            return self
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(Q(is_public=True) | Q(owner=user) | Q(members=user)).distinct()

    def writable_by(self, user):
        """Collections whose documents `user` may add, change or delete: staff,
        in the collections they may read (which of those changes: their model
        permissions on Document, checked by the admin and the API alike)."""
        if user is None:
            return self
        if not (user.is_authenticated and user.is_staff):
            return self.none()
        return self.readable_by(user)


class Collection(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=True, help_text="Every signed-in user may read it.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="rag_collections")
    created = models.DateTimeField(auto_now_add=True)

    objects = CollectionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Document(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PARSING = "parsing", "Parsing"
        EMBEDDING = "embedding", "Embedding"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="documents")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=300)
    original_filename = models.CharField(max_length=255)
    file = models.FileField(upload_to="documents/", max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    error = models.TextField(blank=True)
    pages = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_embedded = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0,
        help_text="Claims since it was last queued by an upload or a re-index: a worker that keeps stopping on it "
        "(killed at the hard time limit) makes it fail after RAG_TASK_MAX_RETRIES + 1.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [models.UniqueConstraint(fields=["collection", "sha256"], name="unique_file_per_collection")]

    def __str__(self):
        return self.title

    @property
    def is_finished(self):
        return self.status in (self.Status.INDEXED, self.Status.FAILED, self.Status.CANCELLED)


class Chunk(models.Model):
    """A passage of a document: the unit that is embedded, retrieved and cited."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page = models.PositiveIntegerField(
        null=True, blank=True, help_text="1-based page; empty for formats without pages."
    )
    heading = models.CharField(max_length=500, blank=True)
    char_start = models.PositiveIntegerField(help_text="Offset of the passage in its page's text.")
    char_end = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="unique_chunk_ordinal")]

    def __str__(self):
        return f"{self.document_id}#{self.ordinal}"
