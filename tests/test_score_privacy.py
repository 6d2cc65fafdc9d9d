"""Scores a caller sees depend on nothing the caller cannot read: BM25 and
evidence weights use statistics of the whole corpus, so only the scores of
the query and the passage alone leave the server (search and answers)."""

import pytest

from tests.conftest import api_client_for, ingest_path
from tests.engines import ScriptedEngine

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # the real embedder

SECRET = "\n\n".join(f"Clause {n}. The penalty is waived when the audit of site {n} is waived too." for n in range(12))


class WaiverEngine(ScriptedEngine):
    script = ("The annual fee of 95 euros is waived in the first year [1].",)


def exposed(user):
    """What `user` is shown for a question about waivers: search hits and an
    answer's citations, passages and evidence, each by chunk (and sentence)."""
    client = api_client_for(user)
    hits = client.get("/api/search", {"q": "annual fee waived", "k": 5}).json()["results"]
    answer = client.post("/api/ask", {"question": "Is the annual fee waived?"}, format="json").json()
    return {
        "hits": {h["chunk_id"]: {k: v for k, v in h.items() if k != "rank"} for h in hits},
        "citations": {c["chunk_id"]: c["score"] for c in answer["citations"]},
        "passages": {p["chunk_id"]: p for p in answer["passages"]},
        "evidence": {(e["chunk_id"], tuple(e["sentence"])): e for e in answer["evidence"]},
        "fields": set(answer),
    }


def test_a_private_document_changes_no_score_another_user_sees(alice, bob, handbook, settings, tmp_path):
    from ingestion.models import Collection

    settings.RAG_GENERATOR_ENGINE = "tests.test_score_privacy.WaiverEngine"
    before = exposed(bob)
    assert before["hits"] and before["citations"] and before["evidence"]
    assert all(set(h["scores"]) == {"dense"} and h["scores"]["dense"] == h["score"] for h in before["hits"].values())
    assert all(set(e["features"]) <= {"dense", "type"} and "score" not in e for e in before["evidence"].values())
    assert "gate" not in before["fields"] and "evidence" in before["fields"]  # its signals weigh words corpus-wide

    Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    path = tmp_path / "waivers.md"
    path.write_text(f"# Waivers\n\n{SECRET}\n")
    ingest_path(path, "alice-private", owner=alice)
    after = exposed(bob)

    for part in ("hits", "citations", "passages", "evidence"):
        shared = before[part].keys() & after[part].keys()
        assert shared or part == "passages", part
        assert {key: before[part][key] for key in shared} == {key: after[part][key] for key in shared}, part
    # The private document is used (it moves statistics) but never shown.
    assert all(h["collection"] != "alice-private" for h in after["hits"].values())
