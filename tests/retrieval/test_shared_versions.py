"""Retriever versions through the shared file store (issue #32): a version
stored when its run ends is loaded on a host that never had its folder, from
that host's checked cache, and switched in there."""

import shutil

import numpy as np
import pytest
from django.conf import settings as django_settings

from retrieval import artifacts, stores, versions
from retrieval.embedding import get_embedder, serving_model_path
from retrieval.models import RetrieverVersion
from retrieval.search import search
from tests.conftest import ingest_path

pytestmark = pytest.mark.slow  # the real embedder


@pytest.fixture
def stored_version(db, s3, settings, tmp_path):
    """A version trained on "host 1" and stored; host 1's folder then gone (we are host 2)."""
    folder = tmp_path / "host1" / "retrievers" / "v1"
    shutil.copytree(django_settings.RAG_EMBEDDER_PATH, folder / "model")
    (folder / "train-pairs.jsonl").write_text("{}\n")  # run data: not what serving needs
    version = RetrieverVersion.objects.create(number=1, name="v1", path=str(folder / "model"), status="evaluated")
    artifacts.publish(version)
    shutil.rmtree(folder)
    settings.RAG_CACHE_DIR = tmp_path / "host2-cache"
    return version


def test_a_stored_version_loads_on_a_host_without_its_folder(stored_version, tmp_path):
    assert stored_version.artifact["name"].startswith("artifacts/retrievers/v1-")
    local = artifacts.local_model(stored_version.path)
    assert str(tmp_path / "host2-cache") in local
    assert not list((tmp_path / "host2-cache" / "folders").glob("*/train-pairs.jsonl"))
    packaged = get_embedder(django_settings.RAG_EMBEDDER_PATH).embed_queries(["annual fee"])
    cached = get_embedder(stored_version.path).embed_queries(["annual fee"])
    assert np.allclose(packaged, cached, atol=1e-3)


def test_a_switch_on_that_host_serves_the_stored_version(stored_version, milvus, tmp_path):
    note = tmp_path / "cards.md"
    note.write_text("# Cards\n\nThe Gold card has an annual fee of 95 euros.\n")
    ingest_path(note)
    versions.switch_to(stored_version.pk)
    assert stores.active_retriever()["name"] == "v1"
    assert serving_model_path() == stored_version.path  # what every host reads from the registry
    assert str(tmp_path / "host2-cache") in get_embedder().model_path  # what this host loads
    assert "95 euros" in search("Gold card annual fee", k=1)[0].text
