"""manage.py evaluate_retrieval on the shipped labelled set, over the shipped
corpus really ingested (real embedder, real FAISS and BM25 indexes)."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import ingest_path

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS = DATA / "eval_corpus"
LABELS = DATA / "retrieval_eval.jsonl"


def run(*args) -> str:
    out = StringIO()
    call_command("evaluate_retrieval", *args, stdout=out)
    return out.getvalue()


def labelled_with_ids(tmp_path) -> Path:
    """The shipped labels name files; ingest them and write the labels with document ids."""
    ids = {path.name: ingest_path(path).pk for path in sorted(CORPUS.glob("*.md"))}
    path = tmp_path / "queries.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for line in LABELS.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            out.write(
                json.dumps(
                    {"query": item["query"], "relevant_document_ids": [ids[name] for name in item["relevant_files"]]}
                )
                + "\n"
            )
    return path


@pytest.mark.slow
def test_it_scores_dense_bm25_and_hybrid_on_the_shipped_set(db, tmp_path):
    queries = labelled_with_ids(tmp_path)
    report = json.loads(run(str(queries), "-k", "5", "--json"))
    assert report["k"] == 5 and report["queries"] == len(LABELS.read_text().splitlines()) >= 25
    assert set(report["summary"]) == {"dense", "bm25", "hybrid"}
    for metrics in report["summary"].values():
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
    assert report["summary"]["hybrid"]["recall"] >= 0.8
    rows = report["per_query"]
    assert all(row["dense"]["retrieved"] and row["hybrid"]["retrieved"] for row in rows)  # real retrieval ran
    assert any(row["dense"]["retrieved"] != row["bm25"]["retrieved"] for row in rows)
    assert any(row["dense"]["mrr"] != row["bm25"]["mrr"] for row in rows)
    # BM25 ranks the one passage with the exact part number first.
    part = next(row for row in rows if row["query"] == "KV-3318")
    assert part["bm25"]["mrr"] == 1.0

    table = run(str(queries), "-k", "5")
    assert table.splitlines()[1].split() == ["method", "recall@5", "MRR", "nDCG@5"]
    assert [line.split()[0] for line in table.splitlines()[3:]] == ["dense", "bm25", "hybrid"]
    hybrid = table.splitlines()[-1].split()
    assert float(hybrid[1]) == pytest.approx(report["summary"]["hybrid"]["recall"], abs=5e-4)


def test_it_rejects_a_malformed_queries_file(db, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "fees", "relevant_document_ids": []}\n')
    with pytest.raises(CommandError, match=r"bad.jsonl:1: relevant_document_ids must be a non-empty list"):
        run(str(path))
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "missing.jsonl"))
