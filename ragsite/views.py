from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from generation.models import Conversation


@require_GET
@login_required
def chat(request, conversation_id=None):
    conversations = Conversation.objects.filter(user=request.user)[:30]
    conversation = None
    history = []
    if conversation_id is not None:
        conversation = get_object_or_404(Conversation, pk=conversation_id, user=request.user)
        history = [
            {"role": m.role, "content": m.content, "found": m.found, "kind": m.kind, "notice": m.notice,
             "passages": m.passages, "guardrail": {"intervened": m.guardrail_intervened},
             "unsupported_spans": m.unsupported_spans, "citations": [c.as_dict() for c in m.citations.all()]}
            for m in conversation.messages.prefetch_related("citations")
        ]
    context = {"conversations": conversations, "conversation": conversation, "history": history}
    return render(request, "chat/index.html", context)
