"""The answerability fit on the real corpus and models (generation/fitting.py):
probes judged by the real retrieval and evidence scoring, the artifact, the
version row, the switch, the refit asked for by changes, the admin."""

import json
from pathlib import Path

import pytest

from generation import answerability, fitting, gate_versions, gathering, probes
from generation.models import AnswerabilityVersion
from retrieval.search import search
from tests.conftest import DEMO, ingest_path

pytestmark = pytest.mark.slow
Status = AnswerabilityVersion.Status


def asks_about_its_start(messages):
    """A question writer that asks about the passage's first words (a scripted LLM)."""
    passage = messages[-1]["content"].removeprefix("Passage: ")
    return "What is said about " + " ".join(passage.split()[:5]) + "?"


@pytest.fixture
def demo(db, settings):
    settings.RAG_ANSWERABILITY_QUESTIONS = 40
    settings.RAG_ANSWERABILITY_MIN_PROBES = 6
    return [ingest_path(path) for path in sorted(DEMO.iterdir()) if path.is_file()]


@pytest.fixture
def fitted(demo):
    return fitting.start("a test", generate=asks_about_its_start)


def test_a_fit_saves_an_artifact_that_decides_answers_when_it_does_no_worse(fitted):
    version = fitted
    assert version.status in (Status.ACTIVE, Status.REJECTED), version.error
    model = answerability.load(version.path)
    assert model.name == version.name and model.threshold is not None
    probed = [json.loads(line) for line in Path(version.path).with_suffix(".probes.jsonl").read_text().splitlines()]
    assert len(probed) == sum(version.metrics["fitted"]["probes"].values())
    assert {p["kind"] for p in probed} == {probes.ASKED, probes.REMOVED, probes.SWAPPED}
    assert all(p["question"] and set(p["values"]) == set(model.coefficients) for p in probed)
    metrics = version.metrics
    assert set(metrics["fitted"]["probes"]) == {probes.ASKED, probes.REMOVED, probes.SWAPPED}
    held = metrics["fitted"]["heldout"]
    assert held["probes"] > 0 and held["precision"] is not None and held["recall"] is not None
    assert metrics["serving"]["name"] == "packaged" and metrics["serving"]["heldout"]["probes"] == held["probes"]
    assert version.corpus == fitting.corpus_state() and version.heldout_documents >= 1
    if metrics["decision"]["switch"]:
        assert version.is_active and gate_versions.current() == model
        assert fitting.stale() == ""  # fitted on this corpus and retriever
    else:
        assert not version.is_active and gate_versions.current() is answerability.PACKAGED

    # The answer path decides with the active model and its own threshold.
    gate_versions.activate(version)
    question = "What is the annual fee of the Gold card?"
    hits = search(question, k=8)
    found = gathering.gather_evidence(question, hits)
    _, _, signals = gathering.judge(question, hits)
    assert found.confidence == round(model.probability(signals), 4)
    assert found.answers == (found.confidence >= model.threshold and not found.lacks)

    gate_versions.deactivate()
    assert gate_versions.current() is answerability.PACKAGED


def test_an_artifact_fitted_on_other_signals_is_refused_and_the_packaged_gate_decides(fitted, admin_client, caplog):
    path = Path(fitted.path)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "definition": data["definition"] + 1}))
    gate_versions.activate(fitted)
    assert gate_versions.current() is answerability.PACKAGED
    assert "not used, the packaged gate decides" in caplog.text
    assert "refit it" in gate_versions.refusal(fitted)

    page = admin_client.get("/admin/generation/answerabilityversion/")
    assert page.status_code == 200
    text = page.content.decode()
    assert fitted.name in text and "refit it" in text and "Held-out precision" in text


def test_probes_about_a_removed_fact_find_no_passage_stating_it(demo):
    question = "What is the annual fee of the Gold card?"
    hits = search(question, k=12)
    gold = next(h for h in hits if "95 euros" in h.text)
    rest = probes.without_fact(hits, gold.chunk_id, ("95",))
    assert rest and all("95" not in h.text for h in rest)
    assert fitting.absent_words()  # words the demo corpus never uses, from the embedder's vocabulary


def test_a_corpus_too_small_to_fit_fails_with_a_readable_reason(db, settings):
    ingest_path(sorted(p for p in DEMO.iterdir() if p.is_file())[0])
    version = fitting.start("a test", generate=asks_about_its_start)
    assert version.status == Status.FAILED and "at least 2 indexed documents" in version.error
    assert gate_versions.current() is answerability.PACKAGED


def test_changes_ask_for_one_refit_until_it_runs(db, settings, monkeypatch):
    queued = []
    from generation import tasks

    monkeypatch.setattr(tasks.fit_answerability, "apply_async", lambda args, countdown: queued.append(countdown))
    settings.RAG_ANSWERABILITY_AUTOFIT = True
    settings.RAG_ANSWERABILITY_DELAY = 120
    ingest_path(sorted(p for p in DEMO.iterdir() if p.is_file())[0])  # document_chunked asks
    assert queued == [120]
    assert not gate_versions.request_refit("another upload")  # one pending already
    gate_versions.refit_started()
    assert gate_versions.request_refit("an upload after the refit began")
    assert queued == [120, 120]
    settings.RAG_ANSWERABILITY_AUTOFIT = False
    gate_versions.refit_started()
    assert not gate_versions.request_refit("autofit is off")
