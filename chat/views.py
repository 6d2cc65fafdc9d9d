import json

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from chat import export, library, originals
from chat.pdfpage import PageError, render_page, sentence_boxes
from chat.services import (
    PDF_TYPE,
    branch_dicts,
    content_type_for,
    conversation_matches,
    conversations_for,
    message_dict,
    neighbour_dict,
    readable_collections,
    readable_documents,
    suggested_questions,
)
from generation import feedback, turns
from generation.models import Citation, Conversation, Message
from ingestion import storage
from ingestion.models import MAX_ID, Chunk, Collection, Document

# Originals are shown, never run: a PDF may use the browser's viewer; text has no rights at all.
PDF_POLICY = "default-src 'none'; object-src 'self'; frame-ancestors 'none'"
TEXT_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"


def one_line(text: str, limit: int = 200) -> str:
    """A search or a title as one line: runs of whitespace become one space,
    and NUL, which PostgreSQL cannot store or compare (a 500), is dropped."""
    return " ".join(text.replace("\x00", "").split())[:limit]


@require_GET
@login_required
def chat(request, conversation_id=None):
    query = one_line(request.GET.get("q", ""))
    conversations = conversations_for(request.user, query)
    conversation = None
    history = []
    if conversation_id is not None:
        conversation = own_conversation(request, conversation_id)
        history = branch_dicts(conversation, request.user)
    collections = list(
        Collection.objects.readable_by(request.user)
        .filter(documents__status=Document.Status.INDEXED)
        .distinct()
        .values_list("name", flat=True)
    )
    context = {
        "conversations": conversations,
        "conversation": conversation,
        "history": history,
        "collections": collections if len(collections) > 1 else [],
        "query": query,
    }
    if request.user.is_staff and request.user.has_perm("ingestion.add_document"):  # upload from the chat
        from django.conf import settings

        from ingestion.services import readable_types

        suffixes, description = readable_types()
        writable = list(Collection.objects.writable_by(request.user).values_list("name", flat=True))
        if writable:
            context["upload"] = {
                "collections": writable,
                "accept": ",".join(sorted(suffixes)),
                "max_bytes": settings.RAG_MAX_UPLOAD_MB * 1024 * 1024,
                "max_mb": settings.RAG_MAX_UPLOAD_MB,
                "accept_words": description,
            }
    if conversation is None:  # the welcome: what this user can ask about
        context["documents"], context["document_count"] = readable_documents(request.user)
        context["suggestions"] = suggested_questions(context["documents"])
    about = request.GET.get("about", "")
    if about.isdigit() and int(about) <= MAX_ID:  # "Ask about it" from the documents page
        context["about"] = library.readable(request.user).filter(pk=int(about)).first()
    return render(request, "chat/index.html", context)


@require_GET
@login_required
def documents(request):
    """The documents the user may ask about, with thumbnails; searched by content or name."""
    query = one_line(request.GET.get("q", ""))
    collection = one_line(request.GET.get("collection", ""))
    page, searched = library.browse(request.user, query=query, collection=collection, page=request.GET.get("page"))
    context = {
        "page": page,
        "rows": [(row, library.has_thumbnail(row.document)) for row in page.object_list],
        "query": query,
        "searched": searched,
        "collection": collection,
        "collections": list(Collection.objects.readable_by(request.user).values_list("name", flat=True)),
    }
    return render(request, "chat/documents.html", context)


@require_GET
@login_required
def document_thumbnail(request, document_id):
    """The first page of a document the user may read, small (PDFs and scans); 404 otherwise."""
    document = readable_document(request, document_id)
    if not library.has_thumbnail(document):
        raise Http404("This document has no pages to draw.")
    try:
        png = library.thumbnail(document)
    except (PageError, FileNotFoundError, ValueError) as exc:
        raise Http404(str(exc)) from None
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"
    return response


def own_conversation(request, conversation_id) -> Conversation:
    if conversation_id > MAX_ID:
        raise Http404
    return get_object_or_404(Conversation, pk=conversation_id, user=request.user)


@require_POST
@login_required
def rename_conversation(request, conversation_id):
    conversation = own_conversation(request, conversation_id)
    title = one_line(request.POST.get("title", ""))
    if title:
        conversation.title = title
        conversation.save(update_fields=["title"])  # not "updated": a rename does not reorder the list
    back = request.POST.get("next", "")  # the page it was renamed from (the welcome stays the welcome)
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(back)
    return redirect("conversation", conversation.pk)


@require_GET
@login_required
def search_conversations(request):
    """The user's conversations matching ?q= as they type, each with a snippet of the matching turn."""
    query = one_line(request.GET.get("q", ""))
    return JsonResponse({"query": query, "results": conversation_matches(request.user, query)})


@require_POST
@login_required
def delete_conversation(request, conversation_id):
    own_conversation(request, conversation_id).delete()
    return redirect("chat")


@require_GET
@login_required
def message(request, conversation_id, message_id):
    """One message as the chat shows it (rendered), for the answer a stream just stored."""
    if max(conversation_id, message_id) > MAX_ID:
        raise Http404
    found = get_object_or_404(
        Message.objects.prefetch_related("citations__chunk", "citations__document"),
        pk=message_id,
        conversation_id=conversation_id,
        conversation__user=request.user,
    )
    return JsonResponse(message_dict(found, readable_collections(request.user), turns.Tree.of(found.conversation)))


@require_GET
@login_required
def conversation_branch(request, conversation_id):
    """The conversation's branch on show, as the chat renders it (after an answer, or a switch)."""
    conversation = own_conversation(request, conversation_id)
    return JsonResponse({"messages": branch_dicts(conversation, request.user)})


@require_POST
@login_required
def switch_version(request, conversation_id):
    """Show another version of a turn: {"message_id": a sibling}; the branch then on show."""
    conversation = own_conversation(request, conversation_id)
    try:
        pk = int(json.loads(request.body or b"{}").get("message_id"))
        if not 0 < pk <= MAX_ID:
            raise ValueError
        turns.switch(conversation, pk)
    except (ValueError, TypeError, AttributeError):
        return JsonResponse({"detail": 'Send {"message_id": <a message of this conversation>}.'}, status=400)
    except LookupError as exc:
        return JsonResponse({"detail": str(exc)}, status=404)
    return JsonResponse({"messages": branch_dicts(conversation, request.user)})


@require_GET
@login_required
def export_conversation(request, conversation_id, form):
    """The branch on show with its sources, as Markdown or JSON, to download."""
    if form not in ("md", "json"):
        raise Http404
    conversation = own_conversation(request, conversation_id)
    shown = branch_dicts(conversation, request.user)
    name = export.filename(conversation, form)
    if form == "json":
        body = json.dumps(export.as_json(conversation, shown), ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
    else:
        response = HttpResponse(export.as_markdown(conversation, shown), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Content-Security-Policy"] = TEXT_POLICY
    return response


@require_GET
@login_required
def document_file(request, document_id):
    """The original file of a document in a collection the user may read; 404 for anyone else."""
    document = readable_document(request, document_id)
    try:
        handle = open(storage.shown_path(document), "rb")  # noqa: SIM115 (FileResponse closes it)
    except (FileNotFoundError, ValueError):
        raise Http404("The file of this document is missing.") from None
    content_type = content_type_for(document.shown_filename)
    response = FileResponse(handle, content_type=content_type, as_attachment=False, filename=document.shown_filename)
    pdf = content_type == PDF_TYPE
    response.headers["Content-Security-Policy"] = PDF_POLICY if pdf else TEXT_POLICY
    return response


def readable_document(request, document_id) -> Document:
    """A document in a collection the user may read; 404 for anyone else."""
    if document_id > MAX_ID:
        raise Http404
    return get_object_or_404(Document, pk=document_id, collection__in=Collection.objects.readable_by(request.user))


@require_GET
@login_required
def document_original(request, document_id):
    """The original as the source viewer shows it (chat/originals.py), as JSON."""
    document = readable_document(request, document_id)
    try:
        data = originals.shown(storage.shown_path(document), document.shown_filename)
    except (FileNotFoundError, ValueError):
        data = {"format": "", "html": "", "reason": "The file of this document is missing."}
    except originals.NotShown as exc:
        data = {"format": "", "html": "", "reason": str(exc)}
    response = JsonResponse(data)
    response["Cache-Control"] = "private, max-age=600"
    return response


def cited_pdf_page(request, citation_id) -> tuple[Citation, str]:
    """A citation of a PDF page, for the owner of the answer while they may
    still read the document, and its cited sentence; 404 otherwise."""
    if citation_id > MAX_ID:
        raise Http404
    citation = get_object_or_404(
        Citation.objects.select_related("document"),
        pk=citation_id,
        withdrawn=False,
        message__conversation__user=request.user,
        document__isnull=False,
        page__isnull=False,
        document__collection__in=Collection.objects.readable_by(request.user),
    )
    if content_type_for(citation.document.shown_filename) != PDF_TYPE:
        raise Http404("Only PDF pages are shown as images.")
    return citation, " ".join(citation.quote[start:end] for start, end in citation.highlight)


@require_GET
@login_required
def citation_page(request, citation_id):
    """The cited PDF page as an image with the cited sentence highlighted."""
    citation, sentence = cited_pdf_page(request, citation_id)
    try:
        png = render_page(storage.shown_path(citation.document), citation.page, sentence)
    except (PageError, FileNotFoundError) as exc:
        raise Http404(str(exc)) from None
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@login_required
def citation_boxes(request, citation_id):
    """Where the cited sentence is on its PDF page: the page size and the
    boxes of its characters in PDF points, for the viewer to highlight."""
    citation, sentence = cited_pdf_page(request, citation_id)
    try:
        data = sentence_boxes(storage.shown_path(citation.document), citation.page, sentence)
    except (PageError, FileNotFoundError) as exc:
        raise Http404(str(exc)) from None
    response = JsonResponse(data)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@login_required
def passage_neighbours(request, chunk_id):
    """The passages before and after one, for the source viewer's "more context"."""
    if chunk_id > MAX_ID:
        raise Http404
    chunk = get_object_or_404(Chunk, pk=chunk_id, document__collection__in=Collection.objects.readable_by(request.user))
    around = {
        c.ordinal: c
        for c in Chunk.objects.filter(document_id=chunk.document_id, ordinal__in=[chunk.ordinal - 1, chunk.ordinal + 1])
    }
    return JsonResponse(
        {
            "before": neighbour_dict(around.get(chunk.ordinal - 1)),
            "after": neighbour_dict(around.get(chunk.ordinal + 1)),
        }
    )


def _verdict(request):
    """{"helpful": true | false | null} from a JSON body; None and a response when it is not that."""
    try:
        return feedback.verdict(json.loads(request.body or b"{}").get("helpful")), None
    except (ValueError, AttributeError):
        return None, JsonResponse({"detail": 'Send {"helpful": true}, false or null.'}, status=400)


@require_POST
@login_required
def answer_feedback(request, conversation_id, message_id):
    """The asker's verdict on an answer: helpful, not helpful, or taken back."""
    if max(conversation_id, message_id) > MAX_ID:
        raise Http404
    helpful, refused = _verdict(request)
    if refused:
        return refused
    return JsonResponse({"helpful": feedback.mark_answer(request.user, conversation_id, message_id, helpful).helpful})


@require_POST
@login_required
def citation_feedback(request, citation_id):
    """The asker's verdict on one source of their answer."""
    if citation_id > MAX_ID:
        raise Http404
    helpful, refused = _verdict(request)
    if refused:
        return refused
    return JsonResponse({"helpful": feedback.mark_citation(request.user, citation_id, helpful).helpful})


@require_POST
@login_required
def citation_opened(request, citation_id):
    """The asker opened a source in the viewer (a signal that it was worth reading)."""
    if citation_id > MAX_ID:
        raise Http404
    feedback.mark_opened(request.user, citation_id)
    return JsonResponse({"opened": True})
