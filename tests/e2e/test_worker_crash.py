"""Kill a worker in the middle of a large document (SIGKILL, as a crash or an
OOM kill would), start another: the document ends indexed once, with no
duplicate chunk and no duplicate or missing vector. The second worker finds
it by its missing heartbeat (RAG_HEARTBEAT_TIMEOUT), with the claim timeout
left at its 15 minutes (issue #26, L5)."""

import signal
import time

import pytest

from ingestion import services
from ingestion.models import Chunk, Document
from retrieval.stores import get_store
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def large_document(path, sections=150):
    parts = []
    for s in range(sections):
        parts.append(f"## Section {s}\n")
        for p in range(4):
            parts.append(
                " ".join(
                    f"Clause {s}.{p}.{n} describes card rule number {n} for section {s} in plain words."
                    for n in range(6)
                )
                + "\n"
            )
    path.write_text("# Large manual\n\n" + "\n".join(parts))
    return path


def test_a_killed_worker_loses_and_duplicates_nothing(start_worker, tmp_path):
    first = start_worker(RAG_HEARTBEAT_TIMEOUT="10")
    with open(large_document(tmp_path / "manual.md"), "rb") as handle:
        document, _ = services.add_document(handle, "manual.md", collection=services.get_collection())

    def embedding_midway():
        d = Document.objects.get(pk=document.pk)
        return d.status == "embedding" and 0 < d.chunks_embedded < d.chunks_total

    wait_until(embedding_midway, 180, "the worker to be midway through embedding", first, interval=0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    crashed = Document.objects.get(pk=document.pk)
    assert crashed.status == "embedding"  # the claim is left behind, as after a real crash
    killed = time.monotonic()

    second = start_worker(RAG_HEARTBEAT_TIMEOUT="10")  # its sweep re-queues what was silent 10 s
    done = wait_until(
        lambda: Document.objects.get(pk=document.pk).status == "indexed", 240, "the second worker to finish", second
    )
    assert done and time.monotonic() - killed < 120  # not the claim timeout's 900 s
    document.refresh_from_db()
    chunks = list(Chunk.objects.filter(document=document).values_list("pk", "ordinal"))
    assert len(chunks) == document.chunks_total == document.chunks_embedded > 64
    assert sorted(o for _, o in chunks) == list(range(len(chunks)))  # each passage once
    ids = get_store().current().ids().tolist()
    assert len(ids) == len(set(ids))  # no vector twice
    assert set(ids) == {pk for pk, _ in chunks}  # and none missing or stale
    assert "Queued 1 unfinished document(s) again" in second.log_path.read_text()
