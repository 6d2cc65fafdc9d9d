"""Real queries, as opposed to the synthetic ones a run writes: labelled
files passed in (`finetune_retriever --labelled`) and askers' feedback in
chat (generation/feedback.py, through RAG_FINETUNE_FEEDBACK_SOURCE). Held out
when all their passages are in held-out documents (evaluation), trained on
when all are in training documents (feedback only), else left out."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from retrieval.finetune import evaluate as evaluation
from retrieval.finetune.data import Passage
from retrieval.finetune.queries import FEEDBACK, Pair


def heldout_queries(labelled, heldout: list[Passage], source: str = "labelled") -> list[evaluation.EvalQuery]:
    """Labelled queries whose relevant documents (or chunks) are all held out."""
    documents = {p.document_id for p in heldout}
    chunks = {p.chunk_id for p in heldout}
    found = []
    for item in labelled:
        within = documents if item.unit == "document" else chunks
        if item.relevant and set(item.relevant) <= within:
            found.append(evaluation.EvalQuery(item.query, frozenset(item.relevant), source, item.unit))
    return found


def feedback_pairs(feedback, train: list[Passage]) -> list[Pair]:
    """Training pairs from askers' feedback (question, a passage they found
    helpful) whose passages are all in training documents (a question that
    also found a held-out passage helpful is left out of training)."""
    passages = {p.chunk_id: p for p in train}
    pairs = []
    for item in feedback:
        if item.unit != "chunk" or not item.relevant or not set(item.relevant) <= set(passages):
            continue
        for pk in sorted(item.relevant):
            passage = passages[pk]
            pairs.append(Pair(item.query, passage.text, pk, passage.document_id, FEEDBACK))
    return pairs


def feedback_queries() -> list:
    """Askers' feedback as labelled queries (by chunk), from the dotted path
    RAG_FINETUNE_FEEDBACK_SOURCE (retrieval is below generation, which keeps
    the answers); none when it is empty."""
    if not settings.RAG_FINETUNE_FEEDBACK_SOURCE:
        return []
    return list(import_string(settings.RAG_FINETUNE_FEEDBACK_SOURCE)())
