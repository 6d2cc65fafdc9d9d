"""The site's metrics registry and the answer counters and histograms
(prometheus-client) that the apps record into; ragsite/metrics.py adds the
gauges read at scrape time and serves GET /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

ANSWER_STAGE = Histogram(
    "rag_answer_stage_seconds",
    "Seconds an answer spent in each stage (retrieval, guardrail_question, evidence, generation, ...).",
    ["stage"],
    buckets=STAGE_BUCKETS,
    registry=REGISTRY,
)
ANSWER_SECONDS = Histogram(
    "rag_answer_seconds", "Seconds from question to stored answer.", buckets=STAGE_BUCKETS, registry=REGISTRY
)
ANSWERS = Counter("rag_answers", "Answers stored, by kind.", ["kind"], registry=REGISTRY)
GUARDRAIL = Counter(
    "rag_guardrail_interventions", "Questions and answers the guardrail stopped.", ["direction"], registry=REGISTRY
)
QUEUE_WAIT = Histogram(
    "rag_answer_queue_wait_seconds",
    "Seconds an answer waited in the answer queue before it started (0 when it started at once).",
    buckets=(0.001, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
    registry=REGISTRY,
)
QUEUE_GAVE_UP = Counter(
    "rag_answer_queue_gave_up", "Answers that waited RAG_ANSWER_MAX_WAIT without starting.", registry=REGISTRY
)
REFUSED_BUSY = Counter(
    "rag_answers_refused_busy", "Answers refused at once: the process had all the answers it may.", registry=REGISTRY
)


def answered(kind: str, timings_ms: dict, guardrail: dict) -> None:
    """An answer was stored: its kind, its stages (milliseconds, as the answer's timings record them)."""
    ANSWERS.labels(kind).inc()
    for stage, milliseconds in timings_ms.items():
        if stage != "total":
            ANSWER_STAGE.labels(stage).observe(milliseconds / 1000)
    ANSWER_SECONDS.observe(sum(v for k, v in timings_ms.items() if k != "total") / 1000)
    if guardrail.get("intervened"):
        GUARDRAIL.labels(guardrail.get("direction") or "unknown").inc()
