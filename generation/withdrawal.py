"""What deleting a document means for the answers that quoted it.

A stored answer keeps its text, but nothing of the deleted document stays
readable through it: each citation of the document loses its quote and is
marked withdrawn; an answer that was itself a quote from the document
(Message.Kind.QUOTED) is replaced by a notice; its passages are dropped from
"not found" answers' closest passages; and the model's own text kept for
audit, written from that evidence, is cleared.
"""

from __future__ import annotations

from django.db import transaction

from generation.models import Citation, Message

WITHDRAWN_ANSWER = "This answer quoted a document that has since been deleted; the quote was withdrawn."


def withdraw_document(document_id: int) -> int:
    """Withdraw what stored answers hold of this document; returns how many citations were withdrawn."""
    with transaction.atomic():
        cited = Citation.objects.filter(document_id=document_id, withdrawn=False)
        message_ids = set(cited.values_list("message_id", flat=True))
        withdrawn = cited.update(quote="", highlight=[], withdrawn=True)
        Message.objects.filter(pk__in=message_ids, kind=Message.Kind.QUOTED).update(content=WITHDRAWN_ANSWER)
        Message.objects.filter(pk__in=message_ids).exclude(generated="").update(generated="")
        # The JSON as text narrows the scan on SQLite and PostgreSQL alike (5 also matches 50: checked below).
        holding = Message.objects.filter(
            kind=Message.Kind.NOT_FOUND, passages__icontains=f'"document_id": {document_id}'
        )
        for message in holding.only("pk", "passages"):
            kept = [p for p in message.passages if p.get("document_id") != document_id]
            if len(kept) != len(message.passages):
                Message.objects.filter(pk=message.pk).update(passages=kept)
    return withdrawn


def withdraw_deleted_document(sender, instance, **kwargs):
    """pre_delete of ingestion.Document: while its citations still point at it."""
    withdraw_document(instance.pk)
