"""What operators scrape (GET /metrics, Prometheus text format, through
prometheus-client): where answer time goes, by stage; the answer queue;
answers by kind; guardrail interventions; the ingestion backlog by status;
the index's size; which answerability model decides.

Counters and histograms are of this process (one gunicorn worker serves by
default; with several, give each its own scrape target or set
PROMETHEUS_MULTIPROC_DIR, prometheus-client's multi-process mode). The
backlog, the index size and the serving models are read at scrape time.
Example queries are in docs/OPERATIONS.md.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

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


class _StateCollector:
    """Gauges read when scraped: the queue, the backlog, the index, the serving models."""

    def collect(self):
        from generation.queueing import ANSWERS as answer_queue

        running, waiting = answer_queue.depth()
        yield GaugeMetricFamily("rag_answers_running", "Answers doing model work now.", value=running)
        yield GaugeMetricFamily("rag_answers_waiting", "Answers waiting in the answer queue.", value=waiting)
        try:
            yield from self._database()
        except Exception:  # a scrape must answer even when the database does not
            log.exception("Metrics: the database-backed gauges could not be read")

    def _database(self):
        from django.db.models import Count

        from generation.models import AnswerabilityVersion
        from ingestion.models import Chunk, Document
        from retrieval import stores
        from retrieval.access import SEARCHABLE

        documents = GaugeMetricFamily("rag_documents", "Documents by ingestion status.", labels=["status"])
        counts = dict(Document.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in Document.Status.values:
            documents.add_metric([status], counts.get(status, 0))
        yield documents
        yield GaugeMetricFamily(
            "rag_index_passages",
            "Passages searches can find (the indexed documents' chunks; read from the database, so that a scrape "
            "never loads the embedder).",
            value=Chunk.objects.filter(SEARCHABLE).count(),
        )
        retriever = GaugeMetricFamily("rag_serving_retriever", "The serving retriever version (1).", labels=["name"])
        retriever.add_metric([stores.active_retriever()["name"]], 1)
        yield retriever
        active = AnswerabilityVersion.objects.filter(is_active=True).values_list("name", flat=True).first()
        gate = GaugeMetricFamily(
            "rag_serving_answerability", "The answerability model deciding (1; packaged: none fitted).", labels=["name"]
        )
        gate.add_metric([active or "packaged"], 1)
        yield gate


REGISTRY.register(_StateCollector())


def exposition() -> bytes:
    return generate_latest(REGISTRY)
