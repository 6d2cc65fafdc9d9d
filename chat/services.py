"""What the chat page shows of a stored message: the same dictionary for the
history the page starts with and for the answer fetched after a stream ends,
so an answer looks the same live and after a reload."""

from __future__ import annotations

import mimetypes
import re
from datetime import timedelta
from pathlib import PurePath

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from chat import suggestions
from chat.originals import format_of
from chat.rendering import render
from generation import turns
from generation.models import Conversation, Message
from ingestion.models import Chunk, Collection, Document

PDF = ".pdf"
PDF_TYPE = "application/pdf"
# How an original is served (chat.views.document_file): PDFs as PDFs, text as
# text. A stored HTML page is shown as its source: it would otherwise run as a
# page of this site. Word files are what they are (the browser downloads them).
TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml"}


WELCOME_DOCUMENTS = 12
SIDEBAR_CONVERSATIONS = 30
# A conversation is stored when its first question is asked, its messages when
# the answer is done: one still without messages after this long lost its
# answer (the server stopped mid-answer) and is left out of the sidebar. It
# is hidden, not deleted: an answer still running may yet land in it (and
# then it shows again).
EMPTY_CONVERSATION_GRACE = timedelta(minutes=1)


def conversations_for(user, query: str = ""):
    """The user's latest conversations, but those left empty
    (EMPTY_CONVERSATION_GRACE); with `query`, those whose title or messages contain it."""
    has_messages = Exists(Message.objects.filter(conversation=OuterRef("pk")))
    recent = Q(created__gte=timezone.now() - EMPTY_CONVERSATION_GRACE)
    conversations = Conversation.objects.filter(has_messages | recent, user=user)
    if query:
        matching = Q(title__icontains=query) | Q(messages__content__icontains=query)
        conversations = conversations.filter(pk__in=Conversation.objects.filter(matching, user=user).values("pk"))
    return label_repeats(list(conversations[:SIDEBAR_CONVERSATIONS]))


SNIPPET_CHARS = 90
_MARKUP = re.compile(r"[#*_`>|]+|\[\d{1,4}\]")  # Markdown marks and [n] citations: not what a reader looks for


def conversation_matches(user, query: str) -> list[dict]:
    """The conversations `query` finds (conversations_for), each with a
    snippet around the first turn that holds it (or its title)."""
    if not query:
        return []
    found = conversations_for(user, query)
    first: dict[int, str] = {}  # each conversation's first turn that holds the words
    turns_with = Message.objects.filter(conversation__in=[c.pk for c in found], content__icontains=query)
    for conversation_id, content in turns_with.order_by("pk").values_list("conversation_id", "content"):
        first.setdefault(conversation_id, content)
    results = []
    for c in found:
        results.append(
            {
                "id": c.pk,
                "url": reverse("conversation", args=[c.pk]),
                "label": c.label,
                "updated": c.updated.isoformat(),
                "updated_text": date_format(timezone.localtime(c.updated), "j M Y, H:i"),
                "snippet": snippet(first.get(c.pk, ""), query),
            }
        )
    return results


def snippet(text: str, query: str) -> str:
    """About SNIPPET_CHARS of `text` from a little before the first `query` in it, on one line."""
    text = " ".join(_MARKUP.sub(" ", text).split())
    at = text.casefold().find(query.casefold())
    if at < 0:
        return ""
    start = max(0, at - 24)
    end = min(len(text), start + SNIPPET_CHARS)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def label_repeats(conversations: list[Conversation]) -> list[Conversation]:
    """Sets `label` on each: its title, numbered "(2)", "(3)"... in the order
    they were started when several have the same one."""
    seen: dict[str, int] = {}
    for conversation in sorted(conversations, key=lambda c: (c.created, c.pk)):
        title = str(conversation)
        seen[title.casefold()] = seen.get(title.casefold(), 0) + 1
        count = seen[title.casefold()]
        conversation.label = title if count == 1 else f"{title} ({count})"
    return conversations


def readable_documents(user) -> tuple[list[Document], int]:
    """The first indexed documents `user` may ask about (newest first) and how many there are."""
    documents = Document.objects.filter(
        collection__in=Collection.objects.readable_by(user), status=Document.Status.INDEXED
    ).select_related("collection")
    return list(documents[:WELCOME_DOCUMENTS]), documents.count()


def suggested_questions(documents: list[Document]) -> list[str]:
    """Questions a new user might ask (chat/suggestions.py), from the
    section headings of the documents with the most of them first."""
    ids = [d.pk for d in documents]
    headings: dict[int, list[str]] = {pk: [] for pk in ids}
    rows = Chunk.objects.filter(document_id__in=ids).exclude(heading="").order_by("document_id", "ordinal")
    for document_id, heading in rows.values_list("document_id", "heading")[:2000]:
        if not headings[document_id] or headings[document_id][-1] != heading:
            headings[document_id].append(heading)
    ranked = sorted(documents, key=lambda d: -len(set(headings[d.pk])))
    return suggestions.suggested([(d.title, headings[d.pk]) for d in ranked])


def content_type_for(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    if suffix == PDF:
        return PDF_TYPE
    if suffix in TEXT_SUFFIXES:
        return "text/plain; charset=utf-8"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def file_url(document_id: int | None, filename: str, page: int | None) -> str:
    """The original file, at the page for a PDF; "" when the document is gone."""
    if not document_id:
        return ""
    url = reverse("document-file", args=[document_id])
    if page and format_of(filename) == "pdf":  # an image read by OCR is served as its searchable PDF
        url += f"#page={page}"
    return url


WITHHELD_ANSWER = "This answer quoted a collection you can no longer read, so its quotes and sources are withheld."


def readable_collections(user) -> frozenset[int]:
    """The ids of the collections `user` may read now (stored answers are shown against it)."""
    return frozenset(Collection.objects.readable_by(user).values_list("pk", flat=True))


def branch_dicts(conversation, user) -> list[dict]:
    """The conversation's branch on show (generation/turns.py), as the chat shows it to `user`."""
    shown, tree = turns.shown(conversation)
    readable = readable_collections(user)
    return [message_dict(m, readable, tree) for m in shown]


def message_dict(message: Message, readable: frozenset[int] | None = None, tree: turns.Tree | None = None) -> dict:
    """A message as the chat shows it, with the versions of its turn when
    `tree` is given (generation/turns.py). `readable`: the viewer's collections
    now; an answer citing a document of another (a member removed from a
    private collection since) is withheld like a deleted document's quote,
    and the closest passages of such documents are left out."""
    anchor = str(message.pk)
    citations = list(message.citations.all())
    content, passages = message.content, message.passages
    if readable is not None:
        if any(c.document_id and c.document.collection_id not in readable for c in citations):
            content, citations = WITHHELD_ANSWER, []
        if passages:
            allowed = set(
                Document.objects.filter(
                    pk__in=[p.get("document_id") for p in passages], collection__in=readable
                ).values_list("pk", flat=True)
            )
            passages = [p for p in passages if p.get("document_id") in allowed]
    unsupported = message.unsupported_spans if content == message.content else []
    numbers = [c.number for c in citations]
    html = render(content, unsupported=unsupported, citations=numbers, anchor=anchor)
    return {
        "id": message.pk,
        "role": message.role,
        "content": content,
        "html": html if message.role == Message.Role.ASSISTANT else "",
        "found": message.found,
        "kind": message.kind,
        "helpful": message.helpful,
        "feedback_url": reverse("answer-feedback", args=[message.conversation_id, message.pk])
        if message.role == Message.Role.ASSISTANT
        else "",
        "notice": message.notice,
        "created": message.created.isoformat(),
        "parent_id": message.parent_id,
        "versions": tree.versions(message.pk) if tree is not None else [message.pk],
        "guardrail": {"intervened": message.guardrail_intervened},
        "unsupported_spans": unsupported,
        "citations": [citation_dict(c) for c in citations],
        "passages": [passage_dict(p, n) for n, p in enumerate(passages, start=1)],
    }


def citation_dict(citation) -> dict:
    data = citation.as_dict()
    withdrawn = citation.withdrawn or not citation.document_id
    data["quote_html"] = "" if withdrawn else render(citation.quote, highlight=citation.highlight)
    data["file_url"] = "" if withdrawn else file_url(citation.document_id, citation.filename, citation.page)
    data["heading"] = citation.chunk.heading if citation.chunk_id and not withdrawn else ""
    data["id"] = citation.pk
    pdf_page = not withdrawn and citation.page and format_of(citation.filename) == "pdf"
    data["page_image_url"] = reverse("citation-page", args=[citation.pk]) if pdf_page else ""
    data["boxes_url"] = reverse("citation-boxes", args=[citation.pk]) if pdf_page else ""
    data.update(original(None if withdrawn else citation.document_id, citation.filename))
    data["around_url"] = (
        reverse("passage-neighbours", args=[citation.chunk_id]) if citation.chunk_id and not withdrawn else ""
    )
    data["ocr_confidence"] = None if withdrawn else ocr_confidence(citation.document, citation.page)
    data["feedback_url"] = "" if withdrawn else reverse("citation-feedback", args=[citation.pk])
    data["opened_url"] = "" if withdrawn else reverse("citation-opened", args=[citation.pk])
    return data


def neighbour_dict(chunk) -> dict | None:
    if chunk is None:
        return None
    return {"page": chunk.page, "heading": chunk.heading, "html": render(chunk.text)}


def passage_dict(passage: dict, number: int) -> dict:
    """One of the closest passages of a 'not found' answer, shown as a source without a highlight."""
    return {
        "number": number,
        "document_id": passage.get("document_id"),
        "title": passage.get("title", ""),
        "filename": passage.get("filename", ""),
        "page": passage.get("page"),
        "quote": passage.get("text", ""),
        "heading": passage.get("heading", ""),
        "highlight": [],
        "withdrawn": False,
        "quote_html": render(passage.get("text", "")),
        "page_image_url": "",
        "around_url": reverse("passage-neighbours", args=[passage["chunk_id"]]) if passage.get("chunk_id") else "",
        "file_url": file_url(passage.get("document_id"), passage.get("filename", ""), passage.get("page")),
        "boxes_url": "",
        **original(passage.get("document_id"), passage.get("filename", "")),
    }


def ocr_confidence(document, page: int | None) -> float | None:
    """How sure OCR was of the cited page, when its text was read from a scan (None otherwise)."""
    if document is None or not document.ocr_pages:
        return None
    wanted = page or 1
    return next((p["confidence"] for p in document.ocr_pages if p.get("page") == wanted), None)


def original(document_id: int | None, filename: str) -> dict:
    """How the viewer shows the original (chat/originals.py) and where it gets it."""
    kind = format_of(filename) if document_id else ""
    url = reverse("document-file" if kind == "pdf" else "document-original", args=[document_id]) if kind else ""
    return {"format": kind, "original_url": url}
