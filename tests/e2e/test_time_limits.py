"""A real prefork worker enforces the tasks' soft time limit: the document
whose task runs past it fails with the reason, and is not left claimed."""

import pytest

from ingestion import services
from ingestion.models import Document
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_task_past_its_soft_time_limit_fails_its_document_with_the_reason(start_worker, tmp_path):
    # Embedding some 1,600 passages takes longer than 3 s even with the
    # embedder already loaded on a fast bf16 machine (400 took 2.7 s there,
    # and the test failed), and only the task's time limit bounds embedding.
    worker = start_worker(
        pool="prefork", RAG_TASK_SOFT_TIME_LIMIT="3", RAG_TASK_HARD_TIME_LIMIT="60", RAG_PARSE_TIMEOUT="2"
    )
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(f"Clause {n} says the Gold card fee is {n} euros in region {n}." for n in range(8_000)))
    with open(path, "rb") as handle:
        document, _ = services.add_document(handle, "long.txt", collection=services.get_collection())
    wait_until(lambda: Document.objects.get(pk=document.pk).status == "failed", 120, "the document to fail", worker)
    document.refresh_from_db()
    assert (
        document.error == "Processing took longer than 3 s (RAG_TASK_SOFT_TIME_LIMIT); split it into smaller documents."
    )
    assert document.claimed_at is None
    assert "Soft time limit (3s) exceeded" in worker.log_path.read_text(errors="replace")
