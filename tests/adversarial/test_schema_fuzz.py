"""Schemathesis against /api/schema/: every operation of the published
schema gets a bounded number of generated requests, valid (positive) and
invalid (negative), with a token; none may give a 5xx, and a documented
status's body and content type must match the schema. Derandomized, so a
run is repeatable; no shrinking, so a failure costs no more than a pass.

Undocumented 4xx (400, 404, 413...) are allowed: a caller's bad input is
theirs to fix, and the schema does not list every refusal."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from ragsite.wsgi import application
from tests.conftest import api_client_for

EXAMPLES = 25  # per operation and mode
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def api_schema(db):
    # The WSGI handler closes the database connection around each request
    # (request_started, request_finished), which would end the test's
    # transaction; Django's test client unhooks it the same way.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def unthrottled(monkeypatch):
    """Generated requests come faster than the per-user rates allow: a 429
    is not what this test is after (tests/generation/test_answer_limits.py
    tests the throttles)."""
    rates = {scope: "100000/min" for scope in SimpleRateThrottle.THROTTLE_RATES}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


def operations(schema):
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 7, [op.label for op in found]
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gives_a_server_error(api_schema, admin_user, fees, unthrottled, settings, mode):
    settings.RAG_MAX_ANSWERS_PER_USER = 1000
    token = api_client_for(admin_user)._credentials["HTTP_AUTHORIZATION"]
    for operation in operations(api_schema):
        # A fixed token: generated Authorization headers would only test the
        # authentication layer (401) and never reach the view.
        strategy = operation.as_strategy(mode, headers={"Authorization": token})

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def requests_to(case):
            case.call_and_validate(checks=CHECKS)

        try:
            requests_to()
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode}): {exc}") from exc


def test_the_answers_a_caller_gets_match_the_schema(api_schema, admin_user, fees):
    """The replies that generated input seldom reaches (a streamed and a JSON
    answer with a citation, a search with hits, a document), checked the same
    way; and the upload's file is a file in the schema."""
    token = api_client_for(admin_user)._credentials["HTTP_AUTHORIZATION"]
    question = "What is the annual fee of the Gold card?"
    cases = [
        ("POST", "/api/ask", {"body": {"question": question, "stream": True}, "media_type": "application/json"}),
        ("POST", "/api/ask", {"body": {"question": question}, "media_type": "application/json"}),
        ("GET", "/api/search", {"query": {"q": "gold card fee", "k": 3}}),
        ("GET", "/api/documents/{id}/", {"path_parameters": {"id": fees.pk}}),
    ]
    for method, path, data in cases:
        case = api_schema[path][method].Case(headers={"Authorization": token}, **data)
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == 200, (method, path, response.text[:500])
        assert "Fees" in response.text  # the answers cite the document, the search finds it
    # Generated uploads reach the view as files (named after their field, so
    # refused for their type: schemathesis gives a part no file name of ours).
    upload = api_schema.raw_schema["components"]["schemas"]["UploadRequest"]["properties"]["file"]
    assert upload["format"] == "binary"  # was the reply's "uri": a client built from the schema sent a string
