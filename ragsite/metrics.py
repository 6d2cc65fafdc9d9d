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

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily

from core.metrics import REGISTRY

log = logging.getLogger(__name__)


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
