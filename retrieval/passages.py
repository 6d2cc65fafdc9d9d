"""What the answer path reads around the passages search returns: the text
that continues a passage, and how rare a question's words are in the corpus."""

from __future__ import annotations

from django.db.models import Q

from ingestion.models import Chunk
from retrieval.stores import get_store


def continuations(chunk_ids: list[int], limit: int = 400) -> dict[int, str]:
    """For each chunk, the text that follows it on its page (from the next
    chunk, past any overlap), at most `limit` characters: an evidence
    sentence that a chunk boundary cut is completed from it."""
    rows = list(Chunk.objects.filter(pk__in=chunk_ids).values_list("pk", "document_id", "ordinal", "page", "char_end"))
    if not rows:
        return {}
    wanted = Q()
    for _pk, document_id, ordinal, _page, _end in rows:
        wanted |= Q(document_id=document_id, ordinal=ordinal + 1)
    following = {
        (c.document_id, c.ordinal): c
        for c in Chunk.objects.filter(wanted).only("document_id", "ordinal", "page", "char_start", "text")
    }
    found = {}
    for pk, document_id, ordinal, page, end in rows:
        after = following.get((document_id, ordinal + 1))
        if after is not None and after.page == page:
            found[pk] = after.text[max(0, end - after.char_start) :][:limit]
    return found


def term_statistics(words: list[str]) -> tuple[dict[str, int], int]:
    """(passages holding each word, passages in all) in the serving BM25 index:
    how rare a question's words are in the corpus (evidence scoring weighs them by it)."""
    bm25 = get_store().current_bm25()
    return bm25.document_frequency(words), bm25.ntotal
