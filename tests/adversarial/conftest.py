"""The standing adversarial suite (issue #12): every door of the site fed
hostile and generated input, and the site kept responsive under load.
These tests use stand-ins for the models (tests/fakes.py) and a scripted
generator, so they run in seconds; the real models are the slow tier's."""

import pytest

from tests import fakes
from tests.conftest import ingest_path

FEES = (
    "# Fees\n\nThe Gold card has an annual fee of 95 euros, which is waived in the first year.\n\n"
    "The Silver card has no annual fee.\n\nThe Platinum card includes airport lounge access.\n"
)


@pytest.fixture
def fake_models(monkeypatch, settings):
    """The hashing embedder, a calm guardrail and the scripted generator (tests/engines.py)."""
    fakes.install(monkeypatch, settings)
    settings.RAG_GENERATOR_ENGINE = "tests.engines.FeeEngine"


@pytest.fixture
def fees(db, fake_models, tmp_path):
    """One small indexed document in the default collection."""
    path = tmp_path / "fees.md"
    path.write_text(FEES)
    return ingest_path(path)
