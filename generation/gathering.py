"""The evidence for a question: every sentence of the retrieved passages
scored (generation/evidence.py, pure) with the corpus statistics and vectors
it needs, the best kept, and whether they answer the question."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from generation import evidence, gate, gate_versions, identifiers
from retrieval import passages as passages_around
from retrieval.embedding import get_embedder
from retrieval.passage_forms import passage_text
from retrieval.reranker import get_reranker

LIST_ITEMS = 8  # the most evidence units a list or a comparison is made of


@dataclass
class Found:
    """The evidence for a question: its profile, the selected units (best
    first) and whether the best of them answers it."""

    profile: evidence.Profile
    units: list
    answers: bool
    salient: frozenset = frozenset()
    unknown: tuple = ()  # identifiers the question names that no retrieved passage mentions
    confidence: float = 0.0  # the gate's probability that the documents answer (0 when unknown is not empty)
    signals: dict = field(default_factory=dict)  # what the gate decided on (generation/gate.py)
    lacks: str = ""  # declined although likely: the kind of value asked for that no chosen unit states (gate.lacking)

    def rows(self, hits, units=None) -> list[dict]:
        return [
            {
                "chunk_id": hits[u.passage].chunk_id,
                "document_id": hits[u.passage].document_id,
                "filename": hits[u.passage].filename,
                "page": hits[u.passage].page,
                "heading": u.heading,
                "text": u.text,
                "sentence": list(u.sentence_span),
                "score": u.score,
                "order": u.order,
                "features": u.features,
            }
            for u in (self.units if units is None else units)
        ]

    def gate(self) -> dict:
        return {
            "confidence": self.confidence,
            "answers": self.answers,
            "signals": self.signals,
            "unknown": self.unknown,
            "lacks": self.lacks,
        }


@dataclass
class Scored:
    """Every sentence of the hits scored: the shortlist best first by the
    evidence score, with what scored them (the corpus weights of the
    question's terms)."""

    profile: evidence.Profile
    passages: list
    ranked: list
    weights: dict
    counts: dict
    total: int


def score_units(question: str, hits) -> Scored:
    """Score every sentence of the hits (generation.evidence): words and value
    type first (cheap), then the best RAG_EVIDENCE_SHORTLIST of them with the
    embedder's cosine and, where the serving retriever has a reranker that
    earned its place (retrieval/reranker.py), the reranker's score."""
    profile = evidence.profile(question)
    following = passages_around.continuations([h.chunk_id for h in hits])
    passages = [
        evidence.Passage(evidence.completed(h.text, following.get(h.chunk_id, "")), h.title, h.heading, h.document_id)
        for h in hits
    ]
    candidates = evidence.units(passages)
    if not candidates:
        return Scored(profile, passages, [], {}, {}, 0)
    counts, total = passages_around.term_statistics([profile.words.get(t, t) for t in profile.terms])
    weights = evidence.idf_weights(profile, counts, total)
    shortlist = evidence.score(profile, candidates, passages, weights)[: settings.RAG_EVIDENCE_SHORTLIST]
    embedder = get_embedder()
    vectors = embedder.embed_passages([evidence.embedding_text(u) for u in shortlist])
    cosine = vectors @ embedder.embed_queries([question])[0]
    reranker = get_reranker()
    reranked = None
    if reranker is not None:
        reranked = reranker.score(
            question,
            [passage_text(u.text, passages[u.passage].title, u.heading) for u in shortlist],
        )
    ranked = evidence.score(profile, shortlist, passages, weights, cosine, reranked)
    return Scored(profile, passages, ranked, weights, counts, total)


def judge(question: str, hits) -> tuple[Scored, tuple, dict]:
    """What the "not in the documents" decision is made on: the scored
    units, the identifiers the question names that no hit mentions, and the
    gate's signals of the best units by the evidence score ({} without any;
    generation/gate.py). Which units to give, quote and cite is the order
    score's choice (gather_evidence)."""
    scored = score_units(question, hits)
    unknown = identifiers.unmentioned(
        identifiers.named(question), [" ".join((p.title, p.heading, p.text)) for p in scored.passages]
    )
    limits = {"limit": settings.RAG_EVIDENCE_ITEMS, "max_chars": settings.RAG_EVIDENCE_CHARS}
    signals = gate.signals(evidence.select(scored.ranked, **limits), scored.passages, scored.weights)
    return scored, unknown, signals


def gather_evidence(question: str, hits, *, listing: bool = False) -> Found:
    """The selected evidence for a question and whether it answers it.
    `listing`: a list or a comparison is asked for: up to LIST_ITEMS units,
    distinct by sentence (list items share their lead-in)."""
    scored, unknown, signals = judge(question, hits)
    if not scored.ranked:
        return Found(scored.profile, [], False, unknown=unknown)
    model = gate_versions.current()
    confidence = 0.0 if unknown else model.probability(signals)
    limits = {"limit": settings.RAG_EVIDENCE_ITEMS, "max_chars": settings.RAG_EVIDENCE_CHARS}
    if listing:
        limits = {"limit": LIST_ITEMS, "max_chars": settings.RAG_EVIDENCE_CHARS * 2, "by_sentence": True}
    chosen = evidence.select(evidence.ordered(scored.ranked), **limits)
    likely = confidence >= (settings.RAG_EVIDENCE_THRESHOLD if model.threshold is None else model.threshold)
    # Likely, but none of the units states the kind of value asked for.
    lacks = gate.lacking([u.text for u in chosen], scored.profile.wants, scored.profile.also) if likely else ""
    return Found(
        scored.profile,
        chosen,
        likely and not lacks,
        evidence.salient(scored.weights),
        unknown,
        round(confidence, 4),
        signals,
        lacks,
    )


def context(hit, unit) -> str:
    return " ".join(part for part in (hit.title, unit.heading) if part)
