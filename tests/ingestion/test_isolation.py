"""Parsing in a memory-capped child (issue #26, H2): a DOCX of 190 MB of empty
paragraphs is read as a stream in bounded memory and fails with a reason; a
file that needs more than RAG_PARSE_MEMORY_MB fails alone with that reason and
leaves the worker's memory as it was; a zip that lies about its sizes is
damaged, not an internal error; the child answers as parse_file does in
process, beats the heartbeat and dies with a cancel."""

import json
import logging
import re
import struct
import zipfile
from io import BytesIO

import pytest

from ingestion import services
from ingestion.isolation import parse_isolated
from ingestion.limits import Guard, LimitExceeded, Limits
from ingestion.models import Document
from ingestion.parsing import ParseError

pytestmark = pytest.mark.django_db

SEED_BODY = b"<w:body>"


@pytest.fixture(autouse=True)
def parse_only(monkeypatch):
    """Documents stop once their passages are stored (no embedder)."""
    monkeypatch.setattr(services.document_chunked, "send", lambda **kwargs: [])


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)) / 1024


def docx_with_body(path, body_megabytes: int, element: bytes = b"<w:p/>", *, first: bytes = b""):
    """A real python-docx file whose body then holds `body_megabytes` MB of `element`, streamed into the zip."""
    import docx

    seed = BytesIO()
    document = docx.Document()
    document.add_paragraph("Seed.")
    document.save(seed)
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename != "word/document.xml":
                target.writestr(item, data)
                continue
            head, tail = data.split(SEED_BODY, 1)
            with target.open(item, "w", force_zip64=True) as member:
                member.write(head + SEED_BODY + first)
                block = element * (1024 * 1024 // len(element))
                for _ in range(body_megabytes):
                    member.write(block)
                member.write(tail)
    return path


def process(data: bytes, name: str) -> Document:
    document, _ = services.add_document(BytesIO(data), name, collection=services.get_collection())
    services.process_document(document.pk)
    document.refresh_from_db()
    return document


def child_peaks(caplog) -> list[float]:
    return [
        float(re.search(r"peak memory (\d+) MB", record.getMessage()).group(1))
        for record in caplog.records
        if record.name == "ingestion.isolation" and "peak memory" in record.getMessage()
    ]


@pytest.mark.slow  # about 20 s: 33 million paragraphs
def test_a_docx_of_190_mb_of_empty_paragraphs_fails_in_bounded_memory(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ingestion.isolation")
    path = docx_with_body(tmp_path / "empty.docx", 190)
    assert path.stat().st_size < 1024 * 1024  # small on disk
    before = rss_mb()
    document = process(path.read_bytes(), "empty.docx")
    assert document.status == "failed" and not document.chunks.exists()
    assert document.error == (
        "The document's text is longer than the limit of 5,000,000 characters (RAG_MAX_TEXT_CHARS); "
        "split it into smaller documents."
    )
    (peak,) = child_peaks(caplog)
    assert peak < 150  # python-docx took 5.1 GB
    assert rss_mb() - before < 50  # the worker itself never held it


def test_a_file_that_needs_more_than_the_memory_cap_fails_alone_and_gives_the_memory_back(settings):
    settings.RAG_PARSE_MEMORY_MB = 96
    before = rss_mb()
    document = process(b"The Gold card costs 95 euros a year. " * 1_200_000, "huge.txt")  # 44 MB
    assert document.status == "failed"
    assert document.error.startswith(
        "Reading the document needed more than the 96 MB of memory one document may use (RAG_PARSE_MEMORY_MB)"
    )
    assert rss_mb() - before < 100  # the text was read by the child, not the worker
    fine = process(b"A short note about the Silver card.", "note.txt")
    assert fine.status == "embedding" and fine.chunks.count() == 1


def test_a_docx_that_lies_about_its_unpacked_size_is_damaged_not_an_internal_error(tmp_path):
    path = docx_with_body(tmp_path / "liar.docx", 20, b"<w:p><w:r><w:t>x</w:t></w:r></w:p>")
    # The zip's records of document.xml say it unpacks to 1 KB (really 20 MB).
    data, name = path.read_bytes(), b"word/document.xml"
    document = process(_lie_about_size(bytes(data), name), "liar.docx")
    assert document.status == "failed"
    assert document.error == "The Word document is damaged (a part of it does not unpack)."


def _lie_about_size(data: bytes, name: bytes) -> bytes:
    """The zip with `name`'s uncompressed size set to 1,024 wherever it is recorded (ZIP64 extra fields too)."""
    with zipfile.ZipFile(BytesIO(data)) as archive:
        info = archive.getinfo(name.decode())
        real = info.file_size
    patched = bytearray(data)
    # In a ZIP64 member the 8-byte sizes sit in the extra field (uncompressed first); a plain one has 4-byte fields.
    for packed in (struct.pack("<Q", real), struct.pack("<I", real)):
        at = patched.find(packed)
        while at != -1:
            patched[at : at + len(packed)] = (1024).to_bytes(len(packed), "little")
            at = patched.find(packed, at + 1)
    with zipfile.ZipFile(BytesIO(bytes(patched))) as archive:
        assert archive.getinfo(name.decode()).file_size == 1024  # zipfile believes the lie
    return bytes(patched)


def test_the_child_answers_as_parse_file_does(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ParseError, match=r"^The file is empty \(0 bytes\)\.$"):
        parse_isolated(empty, "empty.txt", Guard(), memory_mb=512)
    long = tmp_path / "long.txt"
    long.write_text("word " * 1000)
    with pytest.raises(LimitExceeded, match="RAG_MAX_TEXT_CHARS"):
        parse_isolated(long, "long.txt", Guard(Limits(max_text_chars=100)), memory_mb=512)
    with pytest.raises(FileNotFoundError):
        parse_isolated(tmp_path / "gone.txt", "gone.txt", Guard(), memory_mb=512)
    parsed = parse_isolated(long, "notes.md", Guard(), memory_mb=512)
    assert parsed.kind == "markdown" and parsed.pages[0].number is None and parsed.pages[0].text == "word " * 1000


def test_a_cancel_while_the_child_parses_kills_it(tmp_path, monkeypatch):
    import subprocess

    started = []
    original = subprocess.Popen.__init__

    def recorded(self, *args, **kwargs):
        original(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(subprocess.Popen, "__init__", recorded)
    path = docx_with_body(tmp_path / "slow.docx", 10)  # several seconds of paragraphs

    class Cancelled(Exception):
        pass

    beats = []

    def heartbeat():
        beats.append(1)
        raise Cancelled

    with pytest.raises(Cancelled):
        parse_isolated(path, "slow.docx", Guard(Limits(), heartbeat, interval=0.1), memory_mb=512)
    assert beats == [1] and started[0].returncode is not None  # stopped at the first beat, child gone


def test_a_file_a_parser_library_fails_on_gets_a_reason_not_an_internal_error(tmp_path, monkeypatch, caplog):
    # Whatever a library raises on a hostile file (it was "internal error", #26 L9),
    # the uploader reads what to do, and the operator's log has the traceback.
    from ingestion import isolation, parsing

    def broken(*args, **kwargs):
        raise KeyError("/Root")  # as a PDF library does on a trailer pointing nowhere

    monkeypatch.setattr(parsing, "parse_file", broken)
    request = {"path": str(tmp_path / "odd.pdf"), "filename": "odd.pdf", "limits": {}, "memory_mb": 512}
    reply = isolation.serve(request)
    assert reply == {"error": "unreadable"}
    caplog.set_level(logging.WARNING, logger="ingestion.isolation")
    with pytest.raises(ParseError) as refused:
        isolation._answer(0, json.dumps(reply).encode(), "Traceback ... KeyError: '/Root'", 512, "odd.pdf")
    assert str(refused.value) == isolation.unreadable("odd.pdf")
    assert "damaged, or not the kind of file its name says (.pdf)" in str(refused.value)
    assert any("KeyError" in r.getMessage() for r in caplog.records)
