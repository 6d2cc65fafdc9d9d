"""Limits on what one document may cost (issue #12): passages capped in
characters, parse limits by pages, text, passages and time, a heartbeat and
cancellation while a document is parsed, and Celery time limits. Each
document over a limit fails alone with a reason a user can act on."""

from io import BytesIO

import pytest

from ingestion import services
from ingestion.models import Document

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def parse_only(monkeypatch):
    """Documents stop once their passages are stored (no embedder: these tests are fast)."""
    monkeypatch.setattr(services.document_chunked, "send", lambda **kwargs: [])


def upload(data: bytes, name: str):
    document, _ = services.add_document(BytesIO(data), name, collection=services.get_collection())
    return document


def process(document) -> Document:
    services.process_document(document.pk)
    document.refresh_from_db()
    return document


def test_a_run_without_spaces_becomes_passages_within_the_character_cap(settings):
    # One question then 'G' * 20,000: one [UNK] token, so one 20 KB passage
    # that ranked first for unrelated questions and filled every reply.
    document = process(upload(b"What is the annual fee of the Gold card? " + b"G" * 20_000, "run.txt"))
    assert document.status == "embedding", document.error
    lengths = [len(text) for text in document.chunks.values_list("text", flat=True)]
    assert max(lengths) <= settings.RAG_CHUNK_MAX_CHARS == 8 * settings.RAG_CHUNK_TOKENS
    assert sum(lengths) >= 20_000
