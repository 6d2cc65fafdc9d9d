"""The pure steps of fine-tuning (retrieval/finetune/): split, queries and
their filter, hard-negative mining, scoring, the switch decision. No
database, no models."""

import numpy as np
import pytest

from retrieval import evaluation
from retrieval.bm25_index import BM25Index, tokenize
from retrieval.finetune import evaluate, negatives, queries
from retrieval.finetune import report as reporting
from retrieval.finetune.data import Passage, sample, share, split_documents
from retrieval.finetune.queries import Pair


# -- split and sampling ---------------------------------------------------------
def test_it_splits_by_document_disjointly_and_reproducibly():
    ids = list(range(1, 101))
    split = split_documents(ids, 0.2, seed=7)
    assert not set(split.train) & set(split.heldout)
    assert set(split.train) | set(split.heldout) == set(ids)
    assert len(split.heldout) == 20
    assert split_documents(reversed(ids), 0.2, seed=7) == split  # input order does not matter
    assert split_documents(ids, 0.2, seed=8).heldout != split.heldout


def test_it_keeps_at_least_one_document_on_each_side():
    assert split_documents([1, 2], 0.01, seed=1).heldout and split_documents([1, 2], 0.99, seed=1).train
    with pytest.raises(ValueError):
        split_documents([1], 0.2, seed=1)


def test_it_samples_the_same_passages_for_the_same_seed():
    passages = [Passage(i, i // 3, "", f"text {i}") for i in range(50)]
    first = sample(passages, 10, seed=3)
    assert first == sample(list(reversed(passages)), 10, seed=3)
    assert first != sample(passages, 10, seed=4)
    assert len(sample(passages, 500, seed=3)) == 50
    assert share(200, 20, 100) == 40 and share(3, 1, 1000) == 1 and share(0, 5, 10) == 0


# -- LLM questions and their filter -------------------------------------------------
PASSAGE = (
    "The Gold card has an annual fee of 95 euros, which is waived in the first year. "
    "Cardholders also collect reward points on every purchase made abroad."
)


def test_it_cleans_what_the_model_wrote():
    assert (
        queries.clean_question('\n1. Question: "What is the annual fee of the Gold card?"\nMore')
        == "What is the annual fee of the Gold card?"
    )
    assert queries.clean_question('A user could ask: "How much is the Gold card') == "How much is the Gold card"
    assert queries.clean_question("What is the fee? The passage says 95 euros.") == "What is the fee?"
    assert queries.clean_question("  \n  ") == ""


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("Fee?", "too_short"),
        ("The passage explains the Gold card fee.", "not_a_question"),
        ("Does the Gold card have an annual fee of 95 euros, which is waived in the first year?", "copied"),
        ("Which volcano erupted on the island of Sumatra in 1883?", "unsupported"),
        ("How much does the Gold card cost each year?", None),
    ],
)
def test_it_drops_short_copied_and_unsupported_questions(question, reason):
    passage_tokens = set(tokenize([PASSAGE])[0])
    overlap = queries.content_overlap(question, passage_tokens, tokenize)
    cosine = 0.1 if reason == "unsupported" else 0.6
    assert queries.rejection(question, PASSAGE, cosine=cosine, overlap=overlap) == reason


def test_it_records_what_the_filter_kept_and_dropped():
    passages = [
        Passage(1, 1, "", PASSAGE),
        Passage(2, 1, "", "Lounge access comes with the Platinum card only."),
        Passage(3, 2, "", PASSAGE),
    ]
    answers = iter(["How much does the Gold card cost per year?", "Lounge?", ""])

    def embed(texts):  # question i and passage i get the same vector: full support
        n = len(texts) // 2
        vectors = np.eye(max(n, 1), 8, dtype=np.float32)[:n]
        return np.vstack([vectors, vectors])

    pairs, stats = queries.llm_pairs(passages, lambda messages: next(answers), embed, tokenize)
    assert [(p.chunk_id, p.method) for p in pairs] == [(1, "llm")]
    assert pairs[0].query == "How much does the Gold card cost per year?" and pairs[0].positive == PASSAGE
    assert stats.asked == 3 and stats.kept == 1 and dict(stats.dropped) == {"too_short": 1, "empty": 1}


# -- Inverse Cloze Task ------------------------------------------------------------
def test_an_ict_pair_takes_one_sentence_out_of_its_passage():
    passage = Passage(9, 4, "Fees", PASSAGE)
    pair = queries.ict_pair(passage, seed=1)
    assert pair.method == "ict" and pair.chunk_id == 9 and pair.document_id == 4
    assert pair.query in PASSAGE and pair.query not in pair.positive
    assert len(pair.positive) < len(PASSAGE)
    assert queries.ict_pair(passage, seed=1) == pair
    assert queries.ict_pair(Passage(1, 1, "", "# Title\n\nToo short."), seed=1) is None


def test_held_out_ict_sentences_are_masked_in_every_passage_that_holds_them():
    sentence = "Cardholders also collect reward points on every purchase made abroad."
    texts = {1: PASSAGE, 2: sentence + " Points never expire.", 3: "Unrelated text about lounges."}
    masked, holders = queries.mask_sentences(texts, [sentence])
    assert holders[sentence] == {1, 2}
    assert all(sentence not in text for text in masked.values())
    assert masked[3] == texts[3] and "waived in the first year" in masked[1]


# -- hard negatives -------------------------------------------------------------------
def _unit(*rows):
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_negatives_are_never_the_positive_its_section_or_a_passage_that_answers():
    passages = [
        Passage(1, 1, "Fees", "The Gold card annual fee is 95 euros."),  # the positive
        Passage(2, 1, "Fees", "The Gold card annual fee is waived at first."),  # same section
        Passage(3, 2, "Prices", "Gold card yearly price: 95 euros, paid in May."),  # answers (as close as the positive)
        Passage(4, 3, "Lounges", "The Gold card gives no lounge access."),  # a hard negative
        Passage(5, 4, "Garden", "Roses need pruning in spring."),
    ]
    vectors = _unit([1, 0, 0], [0.99, 0.1, 0], [0.97, 0.2, 0], [0.8, 0.6, 0], [0, 0, 1])
    pair = Pair("Gold card annual fee", passages[0].text, 1, 1, "llm")
    bm25 = BM25Index()
    bm25.add([p.chunk_id for p in passages], [p.text for p in passages])
    triplets, stats = negatives.mine(
        [pair],
        passages,
        query_vectors=_unit([1, 0.05, 0]),
        positive_vectors=vectors[:1],
        passage_vectors=vectors,
        bm25=bm25,
        margin=0.05,
    )
    assert [t.negative.chunk_id for t in triplets] == [4]
    assert stats.skipped == {"positive": 1, "same_section": 1, "scored_as_answering": 1}
    assert stats.with_negative == 1 and triplets[0].source == "both"


def test_a_pair_without_a_surviving_candidate_gets_no_negative():
    passages = [Passage(1, 1, "", "alpha beta gamma"), Passage(2, 1, "", "alpha beta delta")]
    vectors = _unit([1, 0], [1, 0.1])
    pair = Pair("alpha beta", passages[0].text, 1, 1, "ict")
    bm25 = BM25Index()
    bm25.add([1, 2], [p.text for p in passages])
    triplets, stats = negatives.mine(
        [pair], passages, query_vectors=vectors[:1], positive_vectors=vectors[:1], passage_vectors=vectors, bm25=bm25
    )
    assert triplets == [] and stats.as_dict()["without_negative"] == 1


# -- evaluation -------------------------------------------------------------------------
class _Embedder:
    """Bag-of-letters vectors: deterministic, and good enough to rank by."""

    def _vectors(self, texts):
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text.lower():
                if "a" <= char <= "z":
                    out[row, ord(char) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    embed_queries = embed_passages = _vectors


def test_evaluation_numbers_are_those_of_the_rankings():
    passages = {
        10: "gold card annual fee",
        11: "platinum lounge access",
        12: "sourdough starter feeding",
        13: "bicycle chain oil",
        14: "heat pump error code",
    }
    eval_queries = [
        evaluate.EvalQuery("annual fee of the gold card", frozenset({10}), "llm"),
        evaluate.EvalQuery("lounge", frozenset({11}), "ict"),
        evaluate.EvalQuery("pump error", frozenset({1}), "labelled", unit="document"),
    ]
    documents = {10: 5, 11: 5, 12: 6, 13: 7, 14: 1}
    result = evaluate.evaluate(eval_queries, passages, {"toy": _Embedder()}, documents=documents)
    assert list(result["methods"]) == ["toy-dense", "bm25", "hybrid-toy"]
    for method, metrics in result["methods"].items():
        rankings = result["rankings"][method]
        for cutoff in (1, 5, 10):
            expected = np.mean(
                [
                    evaluation.recall_at_k([documents[i] for i in r] if q.unit == "document" else r, q.relevant, cutoff)
                    for r, q in zip(rankings, eval_queries)
                ]
            )
            assert metrics[f"recall@{cutoff}"] == pytest.approx(expected)
    assert result["methods"]["bm25"]["recall@1"] == 1.0  # each query shares words with its passage only
    assert result["by_source"]["llm"]["queries"] == 1 and set(result["by_source"]) == {"llm", "ict", "labelled"}


def test_hybrid_fuses_as_search_does():
    ids = np.array([1, 2, 3])
    cosines = np.array([[0.9, 0.5, 0.1]])
    fused = evaluate.hybrid_rankings([[1, 2, 3]], [[3, 2]], cosines, ids, rrf_k=60)
    scores = {1: 1 / 61, 2: 1 / 62 + 1 / 62, 3: 1 / 63 + 1 / 61}  # 1/(60 + rank) summed over both lists
    assert fused == [[3, 2, 1]] == [sorted(scores, key=lambda pk: -scores[pk])]
    # A tie in the fused score goes to the higher cosine, as in search.
    assert evaluate.hybrid_rankings([[1, 2]], [[2, 1]], np.array([[0.2, 0.8]]), np.array([1, 2]), rrf_k=60) == [[2, 1]]


def test_the_decision_needs_the_margin_over_the_serving_model():
    methods = {"finetuned-dense": {"recall@10": 0.55}, "base-dense": {"recall@10": 0.5}, "bm25": {"recall@10": 0.6}}
    assert reporting.decide(methods, "base", "base", 0.05)["better"]
    decision = reporting.decide(methods, "base", "base", 0.2)
    assert not decision["better"] and decision["gain"] == pytest.approx(0.1)
    assert decision["gain_over_bm25"] == pytest.approx(-1 / 12, abs=1e-6)
