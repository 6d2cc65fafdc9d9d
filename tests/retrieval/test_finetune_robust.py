"""Fine-tuning runs that stop for a reason the user can act on, stay inside
their budget, and ask before they start (issue #15 item 6). No model loads."""

import time
from io import BytesIO

import pytest
from django.urls import reverse

from ingestion import services as ingestion
from ingestion.models import Chunk, Document
from retrieval.finetune import pipeline, queries
from retrieval.finetune.data import Passage
from retrieval.models import RetrieverVersion
from tests.retrieval.test_finetune import small_options

pytestmark = pytest.mark.django_db


def indexed(name: str, *texts: str) -> Document:
    """A document as if indexed (rows only: no parsing, no vectors)."""
    document = ingestion.add_document(BytesIO(name.encode()), name, collection=ingestion.get_collection())[0]
    Document.objects.filter(pk=document.pk).update(status=Document.Status.INDEXED)
    for ordinal, text in enumerate(texts):
        Chunk.objects.create(
            document=document,
            ordinal=ordinal,
            text=text,
            content_hash=f"{name}{ordinal}",
            char_start=0,
            char_end=len(text),
        )
    return document


def options(**overrides):
    """The whole pipeline's small options, without the LLM and the styled queries."""
    values = dict(llm_queries=0, keyword_queries=0, situation_queries=0, heldout_share=0.2)
    return small_options(**{**values, **overrides})


def test_a_corpus_of_one_document_stops_with_what_to_do_not_a_traceback():
    indexed("only.md", "The only passage of the only document says very little about anything at all.")
    with pytest.raises(pipeline.CorpusTooSmall):
        pipeline.start(options())
    run = RetrieverVersion.objects.get(name="v1")
    assert run.status == RetrieverVersion.Status.FAILED
    assert run.error.startswith("The corpus is too small to fine-tune on: it needs at least 2 documents")
    assert "add documents" in run.error and "Traceback" not in run.error and "ValueError" not in run.error


def test_documents_without_a_usable_sentence_stop_with_what_to_do():
    """The demo corpus's failure: the held-out side gave no question
    ("ict_queries: ValueError: No held-out queries", with a traceback)."""
    indexed("a.md", "Fees.")
    indexed("b.md", "Rates.")
    with pytest.raises(pipeline.CorpusTooSmall, match="held-out documents gave no question"):
        pipeline.start(options())
    assert "Traceback" not in RetrieverVersion.objects.get(name="v1").error


def test_the_llm_questions_stop_at_their_deadline():
    passages = [Passage(i, 1, "", f"Passage {i} says the fee is {i} euros a year.") for i in range(5)]
    asked = []

    def generate(messages):
        asked.append(messages)
        time.sleep(0.05)
        return "What is the fee?"

    embed = lambda texts: __import__("numpy").ones((len(texts), 2)) / 2**0.5  # noqa: E731
    _pairs, stats = queries.llm_pairs(
        passages, generate, embed, lambda t: [s.split() for s in t], deadline=time.monotonic() + 0.12
    )
    assert 1 <= len(asked) < 5 and stats.asked == len(asked) and stats.not_asked == 5 - len(asked)
    assert stats.as_dict()["not_asked"] == stats.not_asked


def test_the_admin_asks_before_a_run_starts(admin_user, client, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    url = reverse("admin:retrieval_retrieverversion_finetune")
    page = client.get(url).content.decode()
    assert "The corpus is too small" in page and "Start the run" not in page  # nothing indexed yet
    indexed("a.md", "One passage of some length about the annual fee of the card.")
    indexed("b.md", "Another passage of some length about the interest rate of the card.")
    page = client.get(url).content.decode()
    assert "2 indexed documents, 2 passages" in page and "Start the run" in page
    assert not RetrieverVersion.objects.exclude(name="base").exists()  # looking starts nothing
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert client.post(url).status_code == 302
    assert len(queued) == 1 and RetrieverVersion.objects.filter(name="v1", stage="queued").exists()
