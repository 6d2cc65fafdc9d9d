from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from generation.models import Conversation, Message
from ingestion.models import MAX_ID, Collection, Document
from ragsite.chat import PDF_TYPE, content_type_for, conversations_for, message_dict, readable_documents

# Originals are shown, never run: a PDF may use the browser's viewer; text has no rights at all.
PDF_POLICY = "default-src 'none'; object-src 'self'; frame-ancestors 'none'"
TEXT_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"


@require_GET
@login_required
def chat(request, conversation_id=None):
    query = " ".join(request.GET.get("q", "").split())[:200]
    conversations = conversations_for(request.user, query)
    conversation = None
    history = []
    if conversation_id is not None:
        conversation = own_conversation(request, conversation_id)
        history = [message_dict(m) for m in conversation.messages.prefetch_related("citations__chunk")]
    collections = list(Collection.objects.readable_by(request.user).filter(documents__status=Document.Status.INDEXED)
                       .distinct().values_list("name", flat=True))
    context = {"conversations": conversations, "conversation": conversation, "history": history,
               "collections": collections if len(collections) > 1 else [], "query": query}
    if conversation is None:  # the welcome: what this user can ask about
        context["documents"], context["document_count"] = readable_documents(request.user)
    return render(request, "chat/index.html", context)


def own_conversation(request, conversation_id) -> Conversation:
    if conversation_id > MAX_ID:
        raise Http404
    return get_object_or_404(Conversation, pk=conversation_id, user=request.user)


@require_POST
@login_required
def rename_conversation(request, conversation_id):
    conversation = own_conversation(request, conversation_id)
    title = " ".join(request.POST.get("title", "").split())[:200]
    if title:
        conversation.title = title
        conversation.save(update_fields=["title"])  # not "updated": a rename does not reorder the list
    return redirect("conversation", conversation.pk)


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
    found = get_object_or_404(Message.objects.prefetch_related("citations__chunk"), pk=message_id,
                              conversation_id=conversation_id, conversation__user=request.user)
    return JsonResponse(message_dict(found))


@require_GET
@login_required
def document_file(request, document_id):
    """The original file of a document in a collection the user may read; 404 for anyone else."""
    if document_id > MAX_ID:
        raise Http404
    readable = Collection.objects.readable_by(request.user)
    document = get_object_or_404(Document, pk=document_id, collection__in=readable)
    try:
        handle = document.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The file of this document is missing.") from None
    content_type = content_type_for(document.original_filename)
    response = FileResponse(handle, content_type=content_type, as_attachment=False, filename=document.original_filename)
    pdf = content_type == PDF_TYPE
    response.headers["Content-Security-Policy"] = PDF_POLICY if pdf else TEXT_POLICY
    return response
