"""Two hosts on one machine (issue #32): each with its own gunicorn, its own
Celery worker and its own data folder, sharing no file: only PostgreSQL,
Redis, one Milvus (a milvus-lite server on loopback) and one S3 bucket (an
S3 server on loopback). What one host takes in, the other serves."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from knox.models import AuthToken

from ingestion.models import Chunk, Collection, Document
from retrieval import artifacts, indexing, stores
from retrieval.models import RetrieverVersion
from tests import s3 as s3_helpers
from tests.e2e.conftest import ROOT, database_url, wait_until
from tests.e2e.test_worker_crash import large_document
from tests.milvus import free_port, stop

requests = pytest.importorskip("requests")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEES = "# Card fees\n\nThe Gold card has an annual fee of 95 euros. The Silver card has no annual fee.\n"
TRAVEL = "# Travel rules\n\nThe daily meal allowance abroad is 55 euros. Claims are filed within 30 days.\n"
SECRET = "# Project Falcon\n\nProject Falcon launches the Diamond card on 3 March with a 400 euro annual fee.\n"


class Host:
    def __init__(self, number: int, root: Path, env: dict):
        self.number = number
        self.data = root / f"host{number}"
        self.data.mkdir(parents=True)
        self.env = {**env, "RAG_DATA_DIR": str(self.data)}
        for name in ("RAG_INDEX_DIR", "RAG_MEDIA_ROOT", "RAG_CACHE_DIR"):
            self.env.pop(name, None)  # each host's own, under its data folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.worker: subprocess.Popen | None = None

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        log_path = self.data / f"{name}.log"
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT
        )
        process.log_path = log_path
        self.processes.append(process)
        return process

    def start_web(self) -> None:
        server = self._start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "ragsite.wsgi", "--bind", f"127.0.0.1:{self.port}"]
            + ["--workers", "1", "--threads", "8", "--timeout", "120"],
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/accounts/login/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"host {self.number}'s gunicorn did not start:\n" + server.log_path.read_text()[-4000:])
            time.sleep(0.3)

    def start_worker(self) -> subprocess.Popen:
        worker = self._start(
            f"worker-{len(self.processes)}",
            [sys.executable, "-m", "celery", "-A", "ragsite", "worker", "--pool=solo", "--loglevel=INFO"]
            + ["--without-gossip", "--without-mingle", "-n", f"host{self.number}-{uuid.uuid4().hex[:6]}@%h"],
        )
        deadline = time.monotonic() + 90
        while " ready." not in worker.log_path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"host {self.number}'s worker did not start:\n" + worker.log_path.read_text()[-4000:])
            time.sleep(0.3)
        self.worker = worker
        return worker

    def api(self, method: str, path: str, token: str, **kwargs):
        response = requests.request(
            method, self.url + path, headers={"Authorization": f"Token {token}"}, timeout=120, **kwargs
        )
        return response

    def search(self, query: str, token: str) -> list[tuple[int, str]]:
        response = self.api("GET", "/api/search", token, params={"q": query, "k": 3})
        assert response.status_code == 200, response.text
        return [(hit["chunk_id"], hit["filename"]) for hit in response.json()["results"]]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                stop(process)


@pytest.fixture
def hosts(transactional_db, milvus, s3, s3_server, settings, tmp_path):
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        pytest.skip("two hosts share PostgreSQL and Redis (DATABASE_URL and REDIS_URL)")
    queue = f"twohosts-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_QUEUE": queue,
        "SECRET_KEY": "two-hosts-test-secret-key-" + "x" * 32,
        "RAG_MILVUS_URI": milvus,
        "RAG_MILVUS_PREFIX": settings.RAG_MILVUS_PREFIX,
        **s3_helpers.environment(s3_server, s3),
        "RAG_PASSAGE_FORM": "text",
        "RAG_GENERATOR_ENGINE": "tests.engines.FeeEngine",
        "RAG_GUARDRAIL_BACKEND": "tests.fakes.CalmClassifier",
        "RAG_CLAIM_TIMEOUT": "10",
        "RAG_METRICS_TOKEN": "two-hosts-metrics",
    }
    settings.RAG_PASSAGE_FORM = "text"
    pair = [Host(1, tmp_path, env), Host(2, tmp_path, env)]
    pair[0].queue = pair[1].queue = queue
    try:
        yield pair
    finally:
        for host in pair:
            host.stop()
        connection.close()  # so the test database can be flushed


@pytest.fixture
def people(transactional_db):
    users = get_user_model().objects
    admin = users.create_superuser("admin", password="admin-password-1")
    alice = users.create_user("alice", password="alice-password-1")
    bob = users.create_user("bob", password="bob-password-1")
    Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    return {user.username: AuthToken.objects.create(user)[1] for user in (admin, alice, bob)}


def upload(host: Host, token: str, name: str, text: str, collection: str = "") -> int:
    data = {"collection": collection} if collection else {}
    response = host.api("POST", "/api/documents/", token, files={"file": (name, text.encode())}, data=data)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def signed_in(host: Host, username: str, password: str):
    session = requests.Session()
    session.get(host.url + "/accounts/login/", timeout=30)
    response = session.post(
        host.url + "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": host.url + "/accounts/login/"},
        timeout=30,
    )
    assert response.status_code == 200 and "sessionid" in session.cookies, response.text[:500]
    return session


def indexed(*ids) -> bool:
    return Document.objects.filter(pk__in=ids, status="indexed").count() == len(ids)


def serving_retriever(host: Host) -> str:
    response = requests.get(host.url + "/metrics", headers={"Authorization": "Bearer two-hosts-metrics"}, timeout=30)
    for line in response.text.splitlines():
        if line.startswith("rag_serving_retriever{") and line.endswith(" 1.0"):
            return line.split('name="', 1)[1].split('"', 1)[0]
    return ""


def test_what_one_host_takes_in_the_other_serves(hosts, people, settings, tmp_path):
    one, two = hosts
    one.start_web()
    two.start_web()
    worker = two.start_worker()  # host 1 has no worker: host 2 must do the work
    fees = upload(one, people["admin"], "fees.md", FEES)
    travel = upload(one, people["admin"], "travel.md", TRAVEL)
    secret = upload(one, people["admin"], "falcon.md", SECRET, "alice-private")
    wait_until(lambda: indexed(fees, travel, secret), 180, "host 2's worker to index host 1's uploads", worker)
    assert f"Document {fees}: parsed" in worker.log_path.read_text()
    assert not list((one.data / "media").rglob("*.md"))  # the originals are in the bucket, not on host 1

    # Search and answers are the same through either host.
    for query in ("annual fee of the Gold card", "meal allowance abroad"):
        assert one.search(query, people["bob"]) == two.search(query, people["bob"]) != []
    answers = [
        host.api("POST", "/api/ask", people["bob"], json={"question": "What is the Gold card's annual fee?"}).json()
        for host in hosts
    ]
    assert answers[0]["answer"] == answers[1]["answer"] and "95 euros" in answers[0]["answer"]
    assert [c["chunk_id"] for c in answers[0]["citations"]] == [c["chunk_id"] for c in answers[1]["citations"]]
    # The original is served by a host that never stored it (fetched from the bucket into its cache).
    browser = signed_in(two, "admin", "admin-password-1")
    response = browser.get(f"{two.url}/documents/{fees}/file", timeout=30)
    assert response.status_code == 200 and response.content == FEES.encode()
    assert list((two.data / "cache" / "files").rglob("*.md"))

    # Only the collections a user may read, through either host.
    for host in hosts:
        assert "falcon.md" not in {name for _, name in host.search("Diamond card launch", people["bob"])}
        assert host.search("Diamond card launch", people["alice"])[0][1] == "falcon.md"

    # A delete through host 2 is gone from host 1's searches.
    assert two.api("DELETE", f"/api/documents/{travel}/", people["admin"]).status_code in (200, 202, 204)
    wait_until(
        lambda: "travel.md" not in {name for _, name in one.search("meal allowance abroad", people["bob"])},
        60,
        "the deleted document to leave host 1's searches",
        worker,
    )

    # A retriever version trained on host 1 (its folder there only) is switched in
    # by host 2's worker; both hosts serve it without a restart.
    folder = one.data / "retrievers" / "v1"
    shutil.copytree(settings.RAG_EMBEDDER_PATH, folder / "model")
    version = RetrieverVersion.objects.create(number=1, name="v1", path=str(folder / "model"), status="evaluated")
    artifacts.publish(version)
    shutil.rmtree(folder)  # one filesystem here: host 2 must not find host 1's folder at its path
    from ragsite.celery import app

    app.send_task("retrieval.tasks.switch_retriever", args=[version.pk], queue=two.queue)
    wait_until(lambda: RetrieverVersion.objects.get(pk=version.pk).status == "active", 180, "the switch to v1", worker)
    for host in hosts:
        wait_until(lambda host=host: serving_retriever(host) == "v1", 30, f"host {host.number} to serve v1")
    assert one.search("annual fee of the Gold card", people["bob"]) == two.search(
        "annual fee of the Gold card", people["bob"]
    )
    assert one.search("annual fee of the Gold card", people["bob"])[0][1] == "fees.md"
    for host in hosts:  # each embeds queries with v1 now, from its own cached copy
        assert list((host.data / "cache" / "folders").glob("*/model/config.json"))


def test_a_worker_killed_mid_document_on_one_host_is_finished_by_the_other(hosts, people, tmp_path):
    one, two = hosts
    one.start_web()
    first = one.start_worker()
    path = large_document(tmp_path / "manual.md")
    document = upload(one, people["admin"], "manual.md", path.read_text())

    def embedding_midway():
        d = Document.objects.get(pk=document)
        return d.status == "embedding" and 0 < d.chunks_embedded < d.chunks_total

    wait_until(embedding_midway, 180, "host 1's worker to be midway through embedding", first, interval=0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    second = two.start_worker()  # its sweep queues claims older than RAG_CLAIM_TIMEOUT again
    wait_until(lambda: indexed(document), 240, "host 2's worker to finish the document", second)
    chunks = set(Chunk.objects.filter(document_id=document).values_list("pk", flat=True))
    row = Document.objects.get(pk=document)
    assert len(chunks) == row.chunks_total == row.chunks_embedded > 64
    ids = stores.get_store().current().ids().tolist()
    assert len(ids) == len(set(ids)) and set(ids) == chunks  # none twice, none missing, none stale
    report = indexing.check_index()
    assert not any(report[key] for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"))
