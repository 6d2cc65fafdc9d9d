"""The management commands, on the same data as the site."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ingestion.models import Document
from retrieval.stores import get_store
from tests.conftest import DEMO

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.slow  # the real embedder
def test_it_ingests_a_folder_and_summarises(tmp_path, handbook_pdf):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "handbook.pdf").write_bytes(handbook_pdf.read_bytes())
    (folder / "notes.txt").write_text("The travel desk books all trips 14 days ahead.")
    (folder / "empty.md").write_bytes(b"")
    output = run("ingest", str(folder), "--collection", "cards", "--inline")
    assert "indexed 2, skipped 0 (already ingested), failed 1" in output
    assert "empty.md: The file is empty" in output
    assert set(Document.objects.values_list("collection__name", flat=True)) == {"cards"}
    # Again: the same files are skipped, nothing is duplicated.
    again = run("ingest", str(folder), "--collection", "cards", "--inline")
    assert "indexed 0, skipped 2 (already ingested), failed 1" in again  # the failed one was retried
    assert Document.objects.count() == 3


def test_it_rejects_a_missing_path():
    with pytest.raises(CommandError, match="No such file"):
        run("ingest", "/no/such/file.pdf")


def test_it_searches_as_text_and_json(handbook):
    text = run("search", "Gold card annual fee", "-k", "2")
    assert text.startswith("1. ") and "handbook.pdf, page 2" in text
    body = json.loads(run("search", "Gold card annual fee", "-k", "2", "--json"))
    assert len(body["results"]) == 2 and body["results"][0]["page"] == 2


def test_it_searches_many_queries_from_a_file(handbook, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"query": "Gold card annual fee"}\n"lounge access"\n\n')
    lines = run("search", "--queries", str(queries), "-k", "1").strip().splitlines()
    assert [json.loads(line)["results"][0]["page"] for line in lines] == [2, 3]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": 1}\n')
    with pytest.raises(CommandError, match="bad.jsonl:1"):
        run("search", "--queries", str(bad))


def test_it_asks(handbook):
    body = json.loads(run("ask", "What is the annual fee of the Gold card?", "--json"))
    assert body["found"] and body["citations"][0]["page"] == 2
    # The trusted caller sees what "found" was decided on (generation/gate.py).
    assert body["gate"]["answers"] and body["gate"]["confidence"] >= 0.8
    assert set(body["gate"]["signals"]) == {"best", "lead", "together", "missing"}
    text = run("ask", "What is the annual fee of the Gold card?")
    assert "[1] Card Handbook (handbook.pdf, page 2)" in text


def test_a_question_longer_than_the_doors_take_is_refused_with_the_limit(db):
    # A 27,000-character question reached the model and failed there ("could not find a KV slot").
    with pytest.raises(CommandError, match="27,000 characters long; ask in at most 2,000"):
        run("ask", "work_mem " * 3000)


def test_it_rebuilds_the_index_from_the_database(handbook):
    chunk_ids = set(handbook.chunks.values_list("pk", flat=True))
    store = get_store()
    with store.writer(fresh=True):
        pass  # simulate a lost index
    assert store.current().ntotal == 0
    assert f"Rebuilt the index with {len(chunk_ids)} vectors" in run("rebuild_index")
    assert set(store.current().ids().tolist()) == chunk_ids
    assert json.loads(run("search", "lounge access", "--json"))["results"][0]["page"] == 3


@pytest.mark.slow  # the real embedder
def test_demo_corpus_ingests(tmp_path):
    output = run("ingest", str(DEMO), "--inline")
    assert "indexed 7, skipped 0 (already ingested), failed 0" in output


def test_check_index_finds_and_repairs_drift(handbook):
    chunk_ids = sorted(handbook.chunks.values_list("pk", flat=True))
    store = get_store()
    with store.write() as snapshot:  # drift: one vector lost, one stray vector and BM25 entry
        snapshot.vectors.remove([chunk_ids[0]])
        import numpy as np

        snapshot.vectors.add([999999], np.ones((1, 384), dtype=np.float32) / np.sqrt(384))
        snapshot.bm25.add([999999], ["stray entry"])
    report = json.loads(run("check_index", "--json"))
    assert report["missing_vectors"] == [chunk_ids[0]] and report["extra_vectors"] == [999999]
    assert report["extra_bm25"] == [999999] and not report["repaired"]
    assert "Run with --repair" in run("check_index")
    assert "Repaired." in run("check_index", "--repair")
    clean = json.loads(run("check_index", "--json"))
    assert not (clean["missing_vectors"] or clean["extra_vectors"] or clean["missing_bm25"] or clean["extra_bm25"])
    assert set(store.current().ids().tolist()) == set(chunk_ids)
    assert "match the database" in run("check_index")


def test_it_searches_by_document(handbook, tmp_path):
    from tests.conftest import ingest_path

    other = tmp_path / "fees-leaflet.md"
    other.write_text("# Card fees\n\nEvery card fee is listed in the handbook; the Gold card fee is 95 euros.\n")
    ingest_path(other)
    body = json.loads(run("search", "Gold card annual fee", "-k", "5", "--by-document", "--json"))
    documents = [r["document_id"] for r in body["results"]]
    assert len(documents) == len(set(documents)) == 2 and [r["rank"] for r in body["results"]] == [1, 2]
    for result in body["results"]:
        assert (
            all(p["document_id"] == result["document_id"] for p in result["passages"]) and len(result["passages"]) <= 2
        )
    assert "1. " in run("search", "Gold card annual fee", "--by-document")
