"""Which generator answers (generation/serving.py): the registry every process
reads, a model tried on one thread only, and the fallback when a version's
file is gone. No model is loaded: the engine records the model it was given."""

import threading

import pytest

from generation import serving
from generation.engines import get_engine


@pytest.fixture
def echo(settings, tmp_path):
    settings.RAG_GENERATOR_DIR = tmp_path / "generators"
    settings.RAG_GENERATOR_ENGINE = "tests.engines.ModelEchoEngine"
    settings.RAG_GENERATOR_MODEL = str(tmp_path / "packaged.gguf")
    yield tmp_path
    get_engine.cache_clear()


def test_it_serves_the_packaged_model_until_a_version_is_switched_in(echo):
    assert serving.serving_name() == "packaged"
    assert get_engine().model_path == str(echo / "packaged.gguf")
    version = echo / "v3.gguf"
    version.write_bytes(b"weights")
    serving.set_serving("v3", str(version))
    # The next call sees the new registry: no restart, no cache to clear.
    assert serving.serving_name() == "v3" and get_engine().model_path == str(version)
    serving.set_serving("packaged", None)
    assert get_engine().model_path == str(echo / "packaged.gguf")


def test_a_tried_model_serves_this_thread_only(echo):
    candidate = str(echo / "candidate.gguf")
    seen = {}
    with serving.trying(candidate):
        assert get_engine().model_path == candidate
        other = threading.Thread(target=lambda: seen.setdefault("other", serving.serving_model()))
        other.start()
        other.join()
    assert seen["other"] == str(echo / "packaged.gguf")
    assert serving.serving_model() == str(echo / "packaged.gguf")


def test_a_version_whose_file_is_gone_falls_back_to_the_packaged_model(echo, caplog):
    serving.set_serving("v9", str(echo / "deleted.gguf"))
    assert serving.serving_model() == str(echo / "packaged.gguf")
    assert "Generator v9 is gone" in caplog.text
    (serving.registry_path()).write_text("{not json")
    assert serving.serving_model() == str(echo / "packaged.gguf")
