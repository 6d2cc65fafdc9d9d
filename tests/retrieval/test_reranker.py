"""The trained reranker (issue #15, item 4): its verdict, where search finds
it, how it re-orders search results and evidence, and that a version without
one (or one that did not earn its place) leaves the order alone."""

import json

import numpy as np
import pytest

from generation import evidence
from retrieval import reranker, stores
from retrieval.finetune import cross_encoder, evaluate, report
from retrieval.finetune.evaluate import EvalQuery
from retrieval.search import search

METRICS = dict.fromkeys(("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10"), 0.5)


def test_rerank_reorders_the_head_only_and_keeps_ties_in_their_first_order():
    scores = {10: 0.1, 11: 0.9, 12: 0.1, 13: 0.5}
    scored, seconds = cross_encoder.rerank(
        lambda query, texts: np.array([scores[int(t)] for t in texts]),
        ["q"],
        [[10, 11, 12, 13, 14, 15]],
        {pk: str(pk) for pk in range(10, 16)},
        depth=4,
    )
    assert [list(s) for s in scored] == [[0.1, 0.9, 0.1, 0.5]] and len(seconds) == 1
    assert cross_encoder.reorder([10, 11, 12, 13, 14, 15], scored[0], 4) == [11, 13, 10, 12, 14, 15]
    assert cross_encoder.reorder([10, 11, 12, 13, 14, 15], scored[0], 2) == [11, 10, 12, 13, 14, 15]  # shallower


def test_a_reranker_over_its_latency_budget_reorders_only_as_many_as_fit():
    assert cross_encoder.within_budget(25.0, 10, 30.0) == 10  # within it
    assert cross_encoder.within_budget(60.0, 10, 30.0) == 5  # twice too slow: half as many
    assert cross_encoder.within_budget(155.0, 10, 30.0) == 0  # fewer than three fit: not used
    assert cross_encoder.within_budget(155.0, 10, 0.0) == 10  # no budget
    assert cross_encoder.within_budget(None, 10, 30.0) == 10  # not measured


def test_the_reranker_is_used_only_when_it_beats_the_order_it_reorders():
    hybrid = dict(METRICS)
    better = {**METRICS, "mrr": 0.6}
    assert cross_encoder.decide({"h": hybrid, "r": better}, "h", "r", 0.02)["use"]
    assert not cross_encoder.decide({"h": hybrid, "r": {**METRICS, "mrr": 0.505}}, "h", "r", 0.02)["use"]  # +1% < 2%
    assert not cross_encoder.decide({"h": hybrid, "r": {**better, "recall@5": 0.4}}, "h", "r", 0.02)[
        "use"
    ]  # loses recall


def _methods(finetuned_dense, reranked_mrr):
    return {
        "base-dense": dict(METRICS),
        "finetuned-dense": {**METRICS, "recall@10": finetuned_dense},
        "bm25": dict(METRICS),
        "hybrid-base": dict(METRICS),
        "hybrid-finetuned": dict(METRICS),
        "hybrid-finetuned+rerank": {**METRICS, "mrr": reranked_mrr},
    }


def test_a_version_switches_in_for_its_reranker_when_its_embedder_alone_is_no_better():
    decided = report.decide(_methods(0.5, 0.6), "base", "base", 0.02, {"use": True})
    assert decided["better"] and decided["better_by"] == "reranker" and decided["reranked_mrr_gain"] == 0.2
    assert not report.decide(_methods(0.5, 0.6), "base", "base", 0.02, {"use": False})["better"]
    assert not report.decide(_methods(0.5, 0.505), "base", "base", 0.02, {"use": True})["better"]
    assert report.decide(_methods(0.6, 0.5), "base", "base", 0.02, None)["better_by"] == "embedder"


def test_the_evidence_order_takes_the_rerankers_share_and_the_gate_keeps_its_score():
    passages = [evidence.Passage("The Gold card costs 95 euros a year. The Silver card costs 95 euros a year.")]
    question = evidence.profile("How much is the card's yearly fee?")
    weights = evidence.idf_weights(question, None, 0)
    plain = evidence.score(question, evidence.units(passages), passages, weights, [0.5, 0.5])
    ranked = evidence.score(question, evidence.units(passages), passages, weights, [0.5, 0.5], [0.1, 0.9])
    assert [u.score for u in ranked] == [u.score for u in plain]  # RERANK_WEIGHTS["evidence"] is 0
    first = evidence.ordered(ranked)[0]
    assert "Silver" in first.text and first.features["rerank"] == pytest.approx(0.9)
    share = evidence.RERANK_WEIGHTS["order"]
    before = {u.start: u.order for u in plain}
    assert first.order == pytest.approx((1 - share) * before[first.start] + share * 0.9, abs=1e-3)


@pytest.fixture
def version_folder(db, settings, tmp_path):
    """A retriever version v1 serving searches, its model folder a copy of
    the packaged embedder's path (no weights are loaded by these tests)."""
    settings.RAG_INDEX_DIR = tmp_path / "indexes"
    model = tmp_path / "v1" / "model"
    model.mkdir(parents=True)
    with stores.registry().changing() as state:
        state["active"] = {"name": "v1", "model": str(model)}
    reranker._reranker.cache_clear()
    yield tmp_path / "v1"
    reranker._reranker.cache_clear()


def _verdict(folder, use, **more):
    (folder / "reranker").mkdir(exist_ok=True)
    (folder / "reranker" / "reranker.json").write_text(json.dumps({"use": use, **more}))


def test_search_finds_the_serving_versions_reranker_only_where_it_earned_its_place(version_folder, settings):
    assert reranker.get_reranker() is None  # the version has none
    _verdict(version_folder, False)
    assert reranker.get_reranker() is None
    assert reranker.get_reranker(force=True).path == str(version_folder / "reranker")
    settings.RAG_RERANK = "on"
    assert reranker.get_reranker() is not None
    settings.RAG_RERANK = "auto"
    _verdict(version_folder, True)
    assert reranker.get_reranker().path == str(version_folder / "reranker")
    assert reranker.get_reranker().depth == settings.RAG_RERANK_DEPTH  # a verdict without a depth: all
    _verdict(version_folder, True, depth=4)  # its run's latency budget let it score four
    assert reranker.get_reranker().depth == 4
    settings.RAG_RERANK_DEPTH = 3  # fewer asked for here
    assert reranker.get_reranker().depth == 3
    settings.RAG_RERANK = "off"
    assert reranker.get_reranker() is None
    with stores.registry().changing() as state:  # rolled back to the packaged embedder: no reranker
        state["active"] = {"name": "base", "model": None}
    settings.RAG_RERANK = "auto"
    assert reranker.get_reranker() is None


class Preferring:
    """A reranker that scores passages by whether they hold a word."""

    def __init__(self, word, depth=10):
        self.word, self.asked, self.depth = word, [], depth

    def score(self, query, texts):
        self.asked.append(texts)
        return np.array([1.0 if self.word in text else 0.0 for text in texts], dtype=np.float32)


@pytest.mark.slow
def test_search_reorders_its_top_hits_by_the_reranker_and_shows_its_score(handbook, monkeypatch, settings):
    plain = search("annual fee", k=5)
    assert len(plain) >= 3 and all("rerank" not in h.scores for h in plain)
    last = plain[-1]
    word = next(w for w in last.text.split() if len(w) > 6 and all(w not in h.text for h in plain[:-1]))
    chosen = Preferring(word)
    monkeypatch.setattr("retrieval.search.get_reranker", lambda force=False: chosen)
    reranked = search("annual fee", k=5)
    assert reranked[0].chunk_id == last.chunk_id and reranked[0].scores["rerank"] == 1.0
    assert [h.rank for h in reranked] == list(range(1, len(plain) + 1))
    assert reranked[0].for_caller()["scores"].keys() == {"dense", "rerank"}
    # Each passage is read with where it sits: the document title and heading.
    assert any(text.startswith(last.title) for text in chosen.asked[0])
    # The rest keep their fused order.
    rest = [h.chunk_id for h in reranked[1:]]
    assert rest == [h.chunk_id for h in plain if h.chunk_id != last.chunk_id]
    assert [h.chunk_id for h in search("annual fee", k=5, rerank=False)] == [h.chunk_id for h in plain]
    # Within a latency budget that let it score two, it re-orders the first two only.
    first = " ".join((plain[0].title, plain[0].heading, plain[0].text))
    shallow = Preferring(next(w for w in plain[1].text.split() if len(w) > 3 and w not in first), depth=2)
    monkeypatch.setattr("retrieval.search.get_reranker", lambda force=False: shallow)
    swapped = search("annual fee", k=5)
    assert len(shallow.asked[0]) == 2 and "rerank" not in swapped[2].scores
    assert [h.chunk_id for h in swapped] == [plain[1].chunk_id, plain[0].chunk_id] + [h.chunk_id for h in plain[2:]]


def test_decisions_rest_on_real_queries_when_there_are_enough():
    sources = ["ict", "ict", "ict", "labelled", "feedback"]
    queries = [EvalQuery(f"q{i}", frozenset({i}), source) for i, source in enumerate(sources)]
    synthetic = [q.source == "ict" for q in queries]
    # The fine-tuned model finds the synthetic queries' passages, the base model the real ones'.
    rankings = {
        "base-dense": [[99 if s else min(q.relevant)] for q, s in zip(queries, synthetic)],
        "finetuned-dense": [[min(q.relevant) if s else 99] for q, s in zip(queries, synthetic)],
        "bm25": [[99] for _ in queries],
    }
    result = {
        "queries": len(queries),
        "rankings": rankings,
        "methods": {m: evaluate.score(r, queries) for m, r in rankings.items()},
    }
    judged, basis = report.deciding_methods(result, queries, {}, 2)
    assert basis == "real (2 labelled and feedback queries)"
    assert not report.decide(judged, "base", "base", 0.02)["better"]
    judged, basis = report.deciding_methods(result, queries, {}, 3)  # too few real queries: all held-out ones decide
    assert basis == "all held-out (5 queries)" and report.decide(judged, "base", "base", 0.02)["better"]
