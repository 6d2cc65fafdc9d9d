"""The documents page of the chat (/documents/): every document a user may
ask about, a page at a time, with its first page as a thumbnail; searched by
what the documents say (the product's own hybrid search, the passages
grouped by document) or by title and file name; each opens, or narrows the
next questions to it. The thumbnails are drawn from the PDF the viewer
shows and kept on disk by the file's hash (derived data: any host makes
its own)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Q

from ingestion import storage
from ingestion.models import Chunk, Collection, Document

PER_PAGE = 24
MAX_NAMED = 500  # documents a search by name lists at most (after those found by content)
SNIPPET_CHARS = 220
PREVIEW_CHARS = 400
# The cosine (all-MiniLM) from which a passage that shares no word with a
# content search still counts as saying something close to it.
RELATED = 0.45
MARKS = re.compile(r"(?m)^#{1,6}\s|[*_`|]+|^-{3,}$")
THUMBNAIL_WIDTH = 240  # pixels: shown at 120 CSS px, sharp on a 2x screen


@dataclass
class Row:
    document: Document
    snippet: str = ""  # the best matching passage of a content search
    page: int | None = None  # its page
    preview: str = ""  # the start of its text: the thumbnail of a document without pages

    @property
    def kind(self) -> str:
        """The file's type as its card shows it without a thumbnail: MD, HTML, DOCX…"""
        return Path(self.document.original_filename).suffix.lstrip(".").upper()[:5] or "FILE"


def readable(user):
    return Document.objects.filter(collection__in=Collection.objects.readable_by(user)).select_related("collection")


def browse(user, *, query: str = "", collection: str = "", page: int = 1) -> tuple[Page, bool]:
    """A page of rows, and whether they come from a content search. The
    documents being read or that failed are listed too (marked), so that an
    uploader finds theirs; a content search finds only indexed ones."""
    documents = readable(user)
    if collection:
        documents = documents.filter(collection__name=collection)
    if not query:  # the database pages the documents; only the page's become rows
        shown = Paginator(documents.order_by("-created"), PER_PAGE).get_page(page)
        shown.object_list = [Row(d) for d in shown.object_list]
    else:
        rows = _by_content(user, query, documents)
        named = documents.filter(Q(title__icontains=query) | Q(original_filename__icontains=query))
        seen = {row.document.pk for row in rows}
        rows += [Row(d) for d in named.order_by("-created")[:MAX_NAMED] if d.pk not in seen]
        shown = Paginator(rows, PER_PAGE).get_page(page)
    _add_previews([row for row in shown.object_list if not has_thumbnail(row.document)])
    return shown, bool(query)


def _add_previews(rows: list[Row]) -> None:
    """The first passages of each (one query for the page): its title alone may be the first."""
    first: dict[int, str] = {}
    passages = Chunk.objects.filter(document_id__in=[row.document.pk for row in rows], ordinal__lt=3)
    for document_id, text in passages.order_by("document_id", "ordinal").values_list("document_id", "text"):
        first[document_id] = first.get(document_id, "") + " " + MARKS.sub(" ", text)
    for row in rows:
        row.preview = " ".join(first.get(row.document.pk, "").split())[:PREVIEW_CHARS]


def _by_content(user, query: str, documents) -> list[Row]:
    """The documents of the passages that match `query`, best first: a
    passage matches when it holds a word of the query (BM25 ranked it) or
    says something close to it (RELATED); a query that nothing says lists
    nothing, not the least unrelated passages."""
    from retrieval import ranking
    from retrieval.search import SearchError, search

    try:
        hits = search(query, user=user, k=settings.RAG_SEARCH_MAX_K)
    except SearchError:
        return []
    matching = [hit for hit in hits if hit.scores.get("bm25") is not None or hit.score >= RELATED]
    best = [hit for hit, _more in ranking.by_document(matching, settings.RAG_SEARCH_MAX_K, 0)]
    shown = documents.in_bulk([hit.document_id for hit in best])
    return [
        Row(shown[hit.document_id], snippet=_snippet(hit.text), page=hit.page)
        for hit in best
        if hit.document_id in shown
    ]


def _snippet(text: str) -> str:
    """The passage as one line of plain words (the Markdown marks the parser adds dropped)."""
    text = " ".join(MARKS.sub(" ", text).split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


def has_thumbnail(document: Document) -> bool:
    """Whether the document is shown as a PDF (its first page makes the thumbnail)."""
    return document.shown_filename.lower().endswith(".pdf")


def thumbnail(document: Document) -> bytes:
    """PNG bytes of the document's first page, drawn once per file and kept;
    FileNotFoundError when its file is gone, pdfpage.PageError when PDFium
    cannot draw it."""
    from chat.pdfpage import render_thumbnail

    source = storage.shown_path(document)
    digest = (document.searchable_file.name and Path(document.searchable_file.name).stem) or document.sha256
    kept = Path(settings.DATA_DIR) / "thumbnails" / f"{digest}-{THUMBNAIL_WIDTH}.png"
    if kept.exists():
        return kept.read_bytes()
    png = render_thumbnail(source, THUMBNAIL_WIDTH)
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_suffix(f".{id(png)}.tmp")
    partial.write_bytes(png)
    partial.replace(kept)  # whole or not at all, whoever draws it at the same time
    return png
