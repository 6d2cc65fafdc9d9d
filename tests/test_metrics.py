"""GET /metrics (ragsite/metrics.py): for staff or a scraper with the token;
answer stages, kinds, the guardrail, the queue, the backlog and the index,
after real answers through the API (the stand-in models of tests/fakes.py)."""

import re

import pytest

from generation import queueing
from tests import fakes
from tests.adversarial.conftest import FEES
from tests.conftest import api_client_for, ingest_path


@pytest.fixture
def indexed(db, monkeypatch, settings, tmp_path):
    fakes.install(monkeypatch, settings)
    settings.RAG_GENERATOR_ENGINE = "tests.engines.FeeEngine"
    path = tmp_path / "fees.md"
    path.write_text(FEES)
    return ingest_path(path)


def value(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$" if labels else rf"^{re.escape(name)} (\S+)$"
    found = re.search(pattern, text, re.M)
    assert found, f"{name}{labels} not in the metrics"
    return float(found.group(1))


def test_metrics_are_for_staff_or_a_scraper_with_the_token(client, alice, admin_user, settings):
    assert client.get("/metrics").status_code == 401
    client.force_login(alice)
    assert client.get("/metrics").status_code == 401
    settings.RAG_METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert scraped.status_code == 200 and scraped["Content-Type"].startswith("text/plain")
    client.force_login(admin_user)
    settings.RAG_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


def test_answers_queue_backlog_and_index_show_in_the_metrics(indexed, alice, admin_user, client):
    client.force_login(admin_user)
    before = client.get("/metrics").content.decode()
    api = api_client_for(alice)
    assert (
        api.post("/api/ask", {"question": "What is the annual fee of the Gold card?"}, format="json").status_code == 200
    )
    assert (
        api.post("/api/ask", {"question": "What is the fee for a diamond submarine?"}, format="json").status_code == 200
    )
    held = queueing.ANSWERS.join("someone")  # an answer doing model work while the scrape comes
    try:
        text = client.get("/metrics").content.decode()
    finally:
        held.leave()
    answered = sum(
        value(text, "rag_answers_total", f'{{kind="{k}"}}')
        for k in ("generated", "quoted", "not_found")
        if f'kind="{k}"' in text
    )
    previous = sum(
        value(before, "rag_answers_total", f'{{kind="{k}"}}')
        for k in ("generated", "quoted", "not_found")
        if f'kind="{k}"' in before
    )
    assert answered - previous == 2
    assert value(text, "rag_answer_stage_seconds_count", '{stage="retrieval"}') >= 2
    assert value(text, "rag_answer_queue_wait_seconds_count") >= 1
    assert value(text, "rag_answers_running") >= 1
    assert value(text, "rag_documents", '{status="indexed"}') == 1
    assert value(text, "rag_index_passages") > 0
    assert value(text, "rag_serving_answerability", '{name="packaged"}') == 1
