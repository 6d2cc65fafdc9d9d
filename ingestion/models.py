from django.conf import settings
from django.db import models, transaction
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


class DocumentQuerySet(models.QuerySet):
    def delete(self):
        """Delete with the documents' rows locked first (see Document.delete)."""
        with transaction.atomic(using=self.db):
            list(self.select_for_update().values_list("pk", flat=True))
            return super().delete()


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
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the worker on it last said it is alive (parsing, embedding); empty while it waits for one "
        "(in the index queue): a heartbeat older than RAG_HEARTBEAT_TIMEOUT is a dead worker's.",
    )
    attempts = models.PositiveSmallIntegerField(
        default=0,
        help_text="Claims since it was last queued by an upload or a re-index: a worker that keeps stopping on it "
        "(killed at the hard time limit) makes it fail after RAG_TASK_MAX_RETRIES + 1.",
    )
    source = models.ForeignKey(
        "Source",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="documents",
        help_text="The synced source that added it (it withdraws it when the file goes).",
    )
    # Scanned pages and images read by OCR (ingestion/ocr.py): the original
    # with the text layer OCR gave it, which the source viewer shows, and what
    # OCR said of each page it read.
    searchable_file = models.FileField(
        upload_to="documents/",
        max_length=300,
        blank=True,
        help_text="The original as a PDF with the text layer OCR gave its scanned pages (shown in the viewer).",
    )
    ocr_pages = models.JSONField(
        default=list,
        blank=True,
        help_text='The pages read by OCR: [{"page": n, "confidence": 0-100, "words": n}].',
    )
    ocr_lowest = models.FloatField(
        null=True, blank=True, help_text="The lowest confidence (0-100) of a page read by OCR; empty: none was."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [models.UniqueConstraint(fields=["collection", "sha256"], name="unique_file_per_collection")]

    objects = DocumentQuerySet.as_manager()

    def __str__(self):
        return self.title

    def delete(self, *args, **kwargs):
        """Delete with the row locked first: a worker writing the document's
        chunks holds the same lock (ingestion.services.replace_chunks), so the
        delete waits for them and takes them too, or the worker finds the
        document gone (without it, chunks written meanwhile broke the delete
        on a foreign key)."""
        with transaction.atomic(using=kwargs.get("using")):
            list(type(self).objects.select_for_update().filter(pk=self.pk).values_list("pk", flat=True))
            return super().delete(*args, **kwargs)

    @property
    def is_finished(self):
        return self.status in (self.Status.INDEXED, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def shown_filename(self) -> str:
        """The name of the file the viewer shows: the searchable PDF of an OCR'd
        document (named after the original), else the original's."""
        if not self.searchable_file:
            return self.original_filename
        stem, dot, suffix = self.original_filename.rpartition(".")
        return f"{stem}.pdf" if dot and suffix.lower() != "pdf" else self.original_filename

    def low_confidence_pages(self, threshold: float) -> list[dict]:
        """The pages OCR read with a confidence below `threshold`."""
        return [page for page in self.ocr_pages if page.get("confidence", 0) < threshold]


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


class Source(models.Model):
    """A place whose files a collection is kept equal to (ingestion/sync.py):
    new files are added, changed ones become new versions of their
    documents, removed ones are withdrawn, unchanged ones are left alone."""

    class Kind(models.TextChoices):
        FOLDER = "folder", "Folder on the server"

    class State(models.TextChoices):
        NEW = "new", "Not synced yet"
        OK = "ok", "In sync"
        SYNCING = "syncing", "Syncing"
        PAUSED = "paused", "Paused"
        ERROR = "error", "Error"

    name = models.CharField(max_length=100)
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="sources")
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.FOLDER,
        help_text="A share (SMB, NFS) mounted on the server is a folder too.",
    )
    location = models.CharField(
        max_length=1000, help_text="The folder's path on the server, under one of RAG_SYNC_ROOTS."
    )
    enabled = models.BooleanField(default=True, help_text="Synced on its schedule (a disabled one only on demand).")
    interval_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Minutes between scheduled syncs; empty: RAG_SYNC_INTERVAL_MINUTES."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.NEW)
    reason = models.TextField(blank=True, help_text="Why it is paused or in error.")
    syncing_since = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_duration = models.FloatField(null=True, blank=True, help_text="Seconds the last sync took.")
    last_counts = models.JSONField(default=dict, blank=True)
    last_errors = models.JSONField(default=list, blank=True, help_text='[{"path": ..., "error": ...}]')
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["collection", "location"], name="unique_source_location")]

    def __str__(self):
        return self.name


class SourceFile(models.Model):
    """A file of a source as the last sync saw it, and the document it is."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=1000, help_text="Relative to the source's location, with / between folders.")
    size = models.BigIntegerField(default=0)
    mtime_ns = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    document = models.ForeignKey(
        Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="source_files"
    )
    error = models.TextField(blank=True, help_text="Why the last sync could not take the file.")

    class Meta:
        ordering = ["source_id", "path"]
        constraints = [models.UniqueConstraint(fields=["source", "path"], name="unique_source_path")]

    def __str__(self):
        return self.path
