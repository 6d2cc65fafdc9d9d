"""Limits on what one document may cost (issue #12): passages capped in
characters, parse limits by pages, text, passages and time, a heartbeat and
cancellation while a document is parsed, and Celery time limits. Each
document over a limit fails alone with a reason a user can act on."""

import subprocess
import time
from datetime import timedelta
from io import BytesIO

import pytest
from django.utils import timezone

from ingestion import services
from ingestion.limits import Guard, LimitExceeded, Limits
from ingestion.models import Document
from ingestion.parsing import parse_file
from tests.pdfs import make_pdf

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


# -- parse limits: pages, text, passages, time ---------------------------------


class CountingGuard(Guard):
    """A guard that counts the steps it was told of."""

    steps = 0

    def step(self):
        self.steps += 1
        super().step()


def make_docx(path, paragraphs):
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))
    return path


SENTENCE = "The Gold card has an annual fee of 95 euros, waived in the first year. "


def test_a_pdf_over_the_page_limit_fails_before_any_page_is_read(settings, tmp_path):
    settings.RAG_MAX_PAGES = 3
    path = make_pdf(tmp_path / "long.pdf", [f"Page {n}. {SENTENCE}" for n in range(5)])
    guard = CountingGuard(Limits(max_pages=3))
    with pytest.raises(LimitExceeded):
        parse_file(path, "long.pdf", guard)
    assert guard.text_chars == 0 and guard.steps == 0
    with open(path, "rb") as handle:
        document = process(upload(handle.read(), "long.pdf"))
    assert document.status == "failed" and not document.chunks.exists()
    assert (
        document.error == "The document has 5 pages; the limit is 3 (RAG_MAX_PAGES); split it into smaller documents."
    )


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".docx", ".pdf"])
def test_a_document_over_the_text_limit_fails_alone(settings, tmp_path, suffix):
    settings.RAG_MAX_TEXT_CHARS = 1_000
    paragraphs = [SENTENCE * 3] * 10  # about 2,100 characters
    path = tmp_path / f"long{suffix}"
    if suffix == ".docx":
        make_docx(path, paragraphs)
    elif suffix == ".pdf":
        make_pdf(path, ["\n\n".join(paragraphs)])
    elif suffix == ".html":
        path.write_text(
            "<html><body><article>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</article></body></html>"
        )
    else:
        path.write_text("\n\n".join(paragraphs))
    fine = process(upload(b"A short note about the Silver card.", "note.txt"))
    document = process(upload(path.read_bytes(), path.name))
    assert document.status == "failed" and not document.chunks.exists()
    assert document.error == (
        "The document's text is longer than the limit of 1,000 characters (RAG_MAX_TEXT_CHARS); "
        "split it into smaller documents."
    )
    fine.refresh_from_db()
    assert fine.status == "embedding" and fine.chunks.count() == 1


def test_a_docx_stops_at_the_paragraph_that_passes_the_text_limit(tmp_path):
    path = make_docx(tmp_path / "long.docx", [SENTENCE] * 200)  # 71 characters each
    guard = CountingGuard(Limits(max_text_chars=1_000))
    with pytest.raises(LimitExceeded):
        parse_file(path, "long.docx", guard)
    assert guard.text_chars == 15 * 71 - 15  # stripped: the 15th paragraph passed 1,000
    assert guard.steps < 40  # not 200: the rest was never read


def test_it_reads_a_docx_of_ten_thousand_paragraphs_in_seconds(tmp_path):
    # A 240 KB DOCX holding 60 MB of XML took about 18 minutes: python-docx
    # looked each paragraph's style up by scanning every style (1.5 ms each).
    import zipfile

    seed = make_docx(tmp_path / "seed.docx", ["Seed."])
    path = tmp_path / "many.docx"
    paragraphs = "<w:p><w:r><w:t>x</w:t></w:r></w:p>" * 10_000
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                data = data.replace(b"<w:body>", b"<w:body>" + paragraphs.encode(), 1)
            target.writestr(item, data)
    started = time.perf_counter()
    parsed = parse_file(path, "many.docx")
    assert time.perf_counter() - started < 5  # was 15 s here; now about 0.5 s
    assert parsed.pages[0].text.count("x") == 10_000


def test_a_document_over_the_passage_limit_fails(settings):
    settings.RAG_MAX_CHUNKS = 3
    document = process(upload((SENTENCE * 200).encode(), "many.txt"))
    assert document.status == "failed" and not document.chunks.exists()
    assert (
        document.error
        == "The document makes more than the limit of 3 passages (RAG_MAX_CHUNKS); split it into smaller documents."
    )


def test_a_parse_over_the_time_limit_fails(settings):
    settings.RAG_PARSE_TIMEOUT = 0.001  # chunking 200 sentences takes longer
    document = process(upload((SENTENCE * 200).encode(), "slow.txt"))
    assert document.status == "failed" and not document.chunks.exists()
    assert document.error == (
        "Reading the document took longer than the limit of 0.001 s (RAG_PARSE_TIMEOUT); "
        "split it into smaller documents."
    )


def test_the_guard_times_out_and_beats_by_its_clock():
    now = [0.0]
    beats = []
    guard = Guard(Limits(timeout=10), lambda: beats.append(now[0]), interval=1.0, clock=lambda: now[0])
    for second in (0.5, 1.0, 1.5, 2.2, 9.9):
        now[0] = second
        guard.step()
    assert beats == [1.0, 2.2, 9.9]
    now[0] = 10.5
    with pytest.raises(LimitExceeded, match="RAG_PARSE_TIMEOUT"):
        guard.step()


# -- heartbeat and cancel while parsing ------------------------------------------


def test_parsing_stamps_the_claim_so_another_worker_cannot_take_it(monkeypatch, settings, handbook_pdf):
    settings.RAG_CLAIM_TIMEOUT = 60
    monkeypatch.setattr(services, "HEARTBEAT_SECONDS", 0)  # a heartbeat at every page, passage, ...
    beats = []
    original = services.record_parse_heartbeat

    def stale_then_beat(document_id):
        # As if this page had taken longer than the claim timeout to read.
        Document.objects.filter(pk=document_id).update(claimed_at=timezone.now() - timedelta(hours=1))
        original(document_id)
        beats.append(Document.objects.get(pk=document_id).claimed_at)
        assert not services.claim(document_id)  # another worker's task finds the claim alive

    monkeypatch.setattr(services, "record_parse_heartbeat", stale_then_beat)
    with open(handbook_pdf, "rb") as handle:
        document = process(upload(handle.read(), "handbook.pdf"))
    assert document.status == "embedding" and document.chunks.exists()
    assert len(beats) >= 3  # at least one a page
    assert all(timezone.now() - beat < timedelta(minutes=1) for beat in beats)


def test_a_cancel_stops_a_parse_in_progress(monkeypatch):
    monkeypatch.setattr(services, "HEARTBEAT_SECONDS", 0)
    beats = []
    original = services.record_parse_heartbeat

    def cancelled_meanwhile(document_id):
        beats.append(document_id)
        services.cancel(Document.objects.get(pk=document_id))  # a user presses cancel
        original(document_id)

    monkeypatch.setattr(services, "record_parse_heartbeat", cancelled_meanwhile)
    document = process(upload((SENTENCE * 200).encode(), "cancelled.txt"))
    assert document.status == "cancelled" and document.error == "Cancelled by a user."
    assert not document.chunks.exists() and document.claimed_at is None
    assert len(beats) == 1  # the parse stopped at its next heartbeat


def test_a_deleted_document_stops_its_parse(monkeypatch):
    monkeypatch.setattr(services, "HEARTBEAT_SECONDS", 0)
    original = services.record_parse_heartbeat

    def deleted_meanwhile(document_id):
        Document.objects.filter(pk=document_id).delete()
        original(document_id)

    monkeypatch.setattr(services, "record_parse_heartbeat", deleted_meanwhile)
    document = upload((SENTENCE * 20).encode(), "deleted.txt")
    services.process_document(document.pk)  # stops quietly
    assert not Document.objects.filter(pk=document.pk).exists()


# -- Celery time limits -----------------------------------------------------------


def test_every_task_has_soft_and_hard_time_limits_from_settings(settings):
    from ingestion.tasks import process_document
    from ragsite.celery import app
    from retrieval import tasks

    def limits(task):  # as the worker resolves them: the task's own, else the configured default
        return task.soft_time_limit or app.conf.task_soft_time_limit, task.time_limit or app.conf.task_time_limit

    ordinary = (settings.RAG_TASK_SOFT_TIME_LIMIT, settings.RAG_TASK_HARD_TIME_LIMIT)
    long = (settings.RAG_LONG_TASK_SOFT_TIME_LIMIT, settings.RAG_LONG_TASK_HARD_TIME_LIMIT)
    assert ordinary == (1_800, 1_860) and long == (21_600, 21_900)
    for task in (process_document, tasks.index_document, tasks.remove_vectors):
        assert limits(task) == ordinary, task.name
    for task in (tasks.finetune_retriever, tasks.switch_retriever, tasks.rebuild_index, tasks.maintain_index):
        assert limits(task) == long, task.name


def test_a_parse_past_the_soft_time_limit_fails_the_document_with_the_reason(monkeypatch, eager_tasks):
    from celery.exceptions import SoftTimeLimitExceeded

    from ingestion.tasks import process_document

    children = []

    def interrupted(child, *args, **kwargs):  # the worker raises it in the task while it waits on the parse
        children.append(child)
        raise SoftTimeLimitExceeded()

    document = upload(SENTENCE.encode(), "slow.txt")
    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    process_document.apply(args=[document.pk])
    document.refresh_from_db()
    assert document.status == "failed" and document.claimed_at is None
    assert len(children) == 1 and children[0].returncode is not None  # the parsing child was stopped with it
    assert document.error == (
        "Processing took longer than 1,800 s (RAG_TASK_SOFT_TIME_LIMIT); split it into smaller documents."
    )


def test_embedding_past_the_soft_time_limit_fails_the_document_with_the_reason(monkeypatch, eager_tasks):
    from celery.exceptions import SoftTimeLimitExceeded

    from retrieval import indexing, tasks

    def interrupted(document_id):
        raise SoftTimeLimitExceeded()

    document = process(upload(SENTENCE.encode(), "slow.txt"))
    assert document.status == "embedding"
    monkeypatch.setattr(indexing, "index_document", interrupted)
    tasks.index_document.apply(args=[document.pk])
    document.refresh_from_db()
    assert document.status == "failed" and document.claimed_at is None
    assert "(RAG_TASK_SOFT_TIME_LIMIT)" in document.error
