"""The answerability artifact and generator versions through the shared file
store (issue #32): a host that lacks the file at the path a row names loads
its checked, cached copy; the serving generator is the active row, not a
file only one host has."""

import dataclasses

import pytest

from core import filestore
from generation import answerability, gate_versions, serving
from generation.models import AnswerabilityVersion, GeneratorVersion


@pytest.fixture
def host2(settings, tmp_path):
    """Switch this process to another host's cache after the first host stored its files."""

    def switch():
        settings.RAG_CACHE_DIR = tmp_path / "host2-cache"

    return switch


def test_the_active_answerability_model_loads_on_a_host_without_its_file(db, s3, host2, tmp_path):
    fitted = dataclasses.replace(answerability.PACKAGED, intercept=-1.25, threshold=0.61, name="a1")
    path = tmp_path / "host1" / "a1.json"
    answerability.save(fitted, str(path))
    version = AnswerabilityVersion.objects.create(number=1, name="a1", path=str(path), status="active")
    version.artifact = filestore.put_file("answerability/a1", path)
    version.is_active = True
    version.save()
    path.unlink()
    host2()
    gate_versions._loaded.clear()
    model = gate_versions.current()
    assert (model.intercept, model.threshold) == (-1.25, 0.61)
    assert gate_versions.refusal(version) == ""


def test_the_serving_generator_is_the_active_row_and_its_file_comes_from_the_store(db, s3, host2, settings, tmp_path):
    gguf = tmp_path / "host1" / "v1" / "model.gguf"
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    version = GeneratorVersion.objects.create(number=1, name="v1", path=str(gguf), status="active", is_active=True)
    version.artifact = filestore.put_file("generators/v1", gguf)
    version.save()
    gguf.unlink()
    host2()
    assert serving.serving_name() == "v1"
    local = serving.serving_model()
    assert str(tmp_path / "host2-cache") in local and open(local, "rb").read(4) == b"GGUF"
    assert not (settings.RAG_GENERATOR_DIR / "serving.json").exists()  # no file any host depends on
    GeneratorVersion.objects.filter(pk=version.pk).update(is_active=False)
    assert serving.serving_model() == str(settings.RAG_GENERATOR_MODEL)  # a rollback, seen at once
