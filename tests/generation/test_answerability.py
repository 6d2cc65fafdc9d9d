"""The answerability model's artifact, its fit and the probes it is fitted on
(generation/answerability.py, generation/probes.py): pure, no database."""

import json
import random
from types import SimpleNamespace

import pytest

from generation import answerability, gate, probes
from generation.answerability import FeatureMismatch, Row


def rows(count: int, seed: int = 0) -> list[Row]:
    """Probes whose answerable ones have a clearly better best score and
    fewer missing terms, over ten documents."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        answerable = i % 2 == 0
        best = rng.uniform(0.55, 0.9) if answerable else rng.uniform(0.2, 0.6)
        missing = rng.uniform(0.0, 0.3) if answerable else rng.uniform(0.2, 0.8)
        values = {"best": best, "lead": rng.uniform(0, 0.3), "together": float(rng.random() < 0.7), "missing": missing}
        kind = probes.ASKED if answerable else (probes.REMOVED if i % 4 == 1 else probes.SWAPPED)
        made.append(Row(values, answerable, kind, document=(i // 2) % 10))
    return made


def test_an_artifact_round_trips_and_decides_as_it_was_fitted(tmp_path):
    model = answerability.fit(rows(400), name="a1", abstention=0.85, heldout={8, 9}, prior=1.0)
    path = str(tmp_path / "a1.json")
    answerability.save(model, path)
    loaded = answerability.load(path)
    assert loaded == model
    assert loaded.signals == gate.SIGNALS and loaded.definition == gate.DEFINITION
    clear = {"best": 0.85, "lead": 0.2, "together": 1.0, "missing": 0.0}
    weak = {"best": 0.3, "lead": 0.0, "together": 0.0, "missing": 0.7}
    assert loaded.probability(clear) >= loaded.threshold > loaded.probability(weak)


def test_an_artifact_fitted_on_other_signals_refuses_to_load(tmp_path):
    model = answerability.fit(rows(200), name="a1", abstention=0.85, heldout={9}, prior=1.0)
    path = tmp_path / "a1.json"
    answerability.save(model, str(path))
    data = json.loads(path.read_text())

    older = {**data, "definition": gate.DEFINITION - 1}  # "together" computed the old way
    path.write_text(json.dumps(older))
    with pytest.raises(FeatureMismatch, match="definition"):
        answerability.load(str(path))

    renamed = {**data, "signals": ["best", "lead", "missing"]}
    path.write_text(json.dumps(renamed))
    with pytest.raises(FeatureMismatch, match="refit"):
        answerability.load(str(path))

    path.write_text(json.dumps({"intercept": 0, "coefficients": {}}))
    with pytest.raises(FeatureMismatch, match="format"):
        answerability.load(str(path))


def test_the_fit_reports_held_out_precision_recall_and_abstention_by_kind():
    model = answerability.fit(rows(600), name="a2", abstention=0.85, heldout={7, 8, 9}, prior=1.0)
    held = model.fitted["heldout"]
    assert held["probes"] == 180  # documents 7, 8 and 9: three of ten
    assert model.fitted["fitted_on"]["probes"] == 420
    assert 0.8 <= held["precision"] <= 1.0 and 0.5 <= held["recall"] <= 1.0
    assert {"abstention_removed", "abstention_swapped"} <= set(held)
    assert model.fitted["probes"] == {"asked": 300, "removed": 150, "swapped": 150}
    # The threshold declines the target share of the fitted probes' unanswerable ones.
    assert model.fitted["fitted_on"]["abstention"] >= 0.85


def test_a_fit_without_both_kinds_of_probe_on_either_side_is_refused():
    answerable_only = [r for r in rows(100) if r.answerable]
    with pytest.raises(ValueError, match="both answerable and unanswerable"):
        answerability.fit(answerable_only, name="a1", abstention=0.85, heldout={0}, prior=1.0)
    with pytest.raises(ValueError, match="held-out"):
        answerability.fit(rows(100), name="a1", abstention=0.85, heldout={99}, prior=1.0)


def test_the_packaged_model_is_the_gate_module_s():
    values = {"best": 0.6, "lead": 0.1, "together": 1.0, "missing": 0.2}
    assert answerability.PACKAGED.probability(values) == gate.probability(values)
    assert answerability.PACKAGED.threshold is None  # RAG_EVIDENCE_THRESHOLD


def hit(chunk_id, text):
    return SimpleNamespace(chunk_id=chunk_id, text=text)


def test_removing_a_fact_leaves_its_neighbours_and_drops_every_passage_stating_its_values():
    hits = [
        hit(1, "The Gold card has an annual fee of 95 euros."),
        hit(2, "Gold card holders pay 95 euros a year, waived in the first year."),
        hit(3, "The Platinum card has an annual fee of 250 euros."),
        hit(4, "Cards are replaced within 5 working days."),
    ]
    left = probes.without_fact(hits, 1, ("95",))
    assert [h.chunk_id for h in left] == [3, 4]
    assert probes.holds_fact("fee: 1,500 euros", ("1500",)) and not probes.holds_fact("no fee", ("95",))
    assert not probes.holds_fact("anything", ())


def test_a_swapped_question_replaces_its_rarest_word_with_one_the_corpus_never_uses():
    weights = {"gold": 3.2, "card": 0.4, "annual": 1.1, "fee": 0.9}
    words = {"gold": "gold", "card": "card", "annual": "annual", "fee": "fee"}
    changed = probes.swapped("What is the Gold card's annual fee?", weights, words, ["walrus"], random.Random(0))
    assert changed == "What is the Walrus card's annual fee?"
    assert probes.swapped("What is it?", {}, {}, ["walrus"], random.Random(0)) is None
    assert probes.swapped("Annual fee?", {"gold": 3.0}, {"gold": "gold"}, ["walrus"], random.Random(0)) is None


def test_only_plain_words_are_put_in():
    assert probes.candidate_words(["##ing", "walrus", "[CLS]", "cat", "x-ray", "tortoises", "extraordinarily"]) == [
        "walrus",
        "tortoises",
    ]


def test_two_documents_stating_the_same_value_back_each_other():
    from generation.evidence import Passage, Unit

    def unit(passage, score, text):
        return Unit(passage, 0, len(text), 0, len(text), text, "", score=score)

    passages = [Passage("", "Cards", "Fees", document=1), Passage("", "Tariff sheet", "Cards", document=2)]
    agreeing = [unit(0, 0.6, "The Gold card costs 95 euros a year."), unit(1, 0.58, "Gold card: 95 euros annually.")]
    competing = [unit(0, 0.6, "The Gold card costs 95 euros a year."), unit(1, 0.58, "Platinum card: 250 euros.")]
    weights = {"gold": 1.0, "card": 1.0, "fee": 1.0}
    assert gate.signals(agreeing, passages, weights)["together"] == 1.0
    assert gate.signals(competing, passages, weights)["together"] == 0.0
    assert gate.probability(gate.signals(agreeing, passages, weights)) > gate.probability(
        gate.signals(competing, passages, weights)
    )
