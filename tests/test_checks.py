"""System checks of the settings (core/checks.py and each app's checks.py): one bad value per check
fails with its id; the default configuration passes; manage.py, the WSGI
start-up and the Celery worker refuse to start on a failing check."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from core import checks

ROOT = Path(__file__).resolve().parent.parent


def error_ids():
    return [message.id for message in run_checks(tags=[checks.TAG]) if message.is_serious()]


def test_it_passes_the_default_configuration():
    assert [message for message in run_checks() if message.is_serious()] == []
    call_command("check")  # raises SystemCheckError on an error


def test_it_registers_every_check_under_its_tag():
    from generation import checks as generation_checks
    from ingestion import checks as ingestion_checks
    from ragsite import checks as site_checks
    from retrieval import checks as retrieval_checks

    each = [site_checks.ALL, ingestion_checks.ALL, retrieval_checks.ALL, generation_checks.ALL]
    assert checks.registered() == {check for app in each for check in app}


def test_it_wants_the_embedder_folder(settings, tmp_path):
    settings.RAG_EMBEDDER_PATH = str(tmp_path / "missing")
    assert error_ids() == ["ragsite.E001"]
    settings.RAG_EMBEDDER_PATH = ""
    assert error_ids() == ["ragsite.E001"]


def test_it_wants_a_sentence_transformers_folder(settings, tmp_path):
    settings.RAG_EMBEDDER_PATH = str(tmp_path)
    assert error_ids() == ["ragsite.E002"]
    (tmp_path / "modules.json").write_text("[]")
    assert error_ids() == ["ragsite.E002"]  # still no tokenizer.json, which chunking counts tokens with
    (tmp_path / "tokenizer.json").write_text("{}")
    assert error_ids() == []


def test_it_wants_the_generator_file(settings, tmp_path):
    settings.RAG_GENERATOR_MODEL = str(tmp_path / "missing.gguf")
    assert error_ids() == ["ragsite.E004"]
    settings.RAG_GENERATOR_MODEL = ""
    assert error_ids() == ["ragsite.E004"]


def test_it_wants_a_config_in_a_generator_folder(settings, tmp_path):
    settings.RAG_GENERATOR_MODEL = str(tmp_path)  # a folder: the transformers engine
    assert error_ids() == ["ragsite.E004"]
    (tmp_path / "config.json").write_text("{}")
    assert error_ids() == []


def test_it_takes_a_served_generator_without_a_model_file(settings):
    settings.RAG_GENERATOR_MODEL = ""
    settings.RAG_GENERATION_URL = "http://generator:8000"
    assert error_ids() == []


def test_it_wants_an_http_url_for_the_served_generator(settings):
    settings.RAG_GENERATION_URL = "generator:8000"
    assert error_ids() == ["ragsite.E005"]
    settings.RAG_GENERATION_URL = ""
    settings.RAG_GENERATOR_ENGINE = "generation.engines.openai_compat.OpenAICompatibleEngine"
    assert error_ids() == ["ragsite.E005"]


@pytest.mark.parametrize(
    "path",
    [
        "generation.engines.nope.Engine",
        "generation.engines.llamacpp.Nope",
        "llamacpp",
        "generation.engines.engine_path",
        "generation.engines.base.GeneratorUnavailable",
    ],
)
def test_it_wants_an_engine_class_that_imports(settings, path):
    settings.RAG_GENERATOR_ENGINE = path
    assert error_ids() == ["ragsite.E003"]


def test_it_takes_a_custom_engine_class(settings):
    settings.RAG_GENERATOR_ENGINE = "tests.engines.ScriptedEngine"
    assert error_ids() == []


@pytest.mark.parametrize("path", ["generation.guardrails.Nope", "generation.guardrails.is_toxic", "nope"])
def test_it_wants_a_guardrail_class_that_imports(settings, path):
    settings.RAG_GUARDRAIL_BACKEND = path
    assert error_ids() == ["ragsite.E006"]


@pytest.mark.parametrize("path", ["generation.engines.nope", "generation.engines.Nope", "ragsite.settings.DEBUG"])
def test_it_wants_a_question_writer_that_imports_and_calls(settings, path):
    settings.RAG_FINETUNE_QUESTION_WRITER = path
    assert error_ids() == ["ragsite.E016"]


@pytest.mark.parametrize("path", ["generation.feedback.nope", "ragsite.settings.DEBUG"])
def test_it_wants_a_feedback_source_that_imports_and_calls_or_none(settings, path):
    settings.RAG_FINETUNE_FEEDBACK_SOURCE = path
    assert error_ids() == ["ragsite.E017"]
    settings.RAG_FINETUNE_FEEDBACK_SOURCE = ""
    assert error_ids() == []


def test_it_wants_the_model_folder_of_the_transformers_guardrail(settings, tmp_path):
    settings.RAG_GUARDRAIL_BACKEND = "generation.guardrails.TransformersToxicityClassifier"
    settings.RAG_GUARDRAIL_MODEL = ""
    assert error_ids() == ["ragsite.E007"]
    settings.RAG_GUARDRAIL_MODEL = str(tmp_path)
    assert error_ids() == ["ragsite.E007"]
    (tmp_path / "config.json").write_text("{}")
    assert error_ids() == []


@pytest.mark.parametrize(
    "name, bad, good",
    [
        ("RAG_EMBEDDER_DEVICE", "gpu", "cuda:1"),
        ("RAG_EMBEDDER_DTYPE", "fp16", "bfloat16"),
        ("RAG_FAISS_GPU", "yes", "off"),
        ("RAG_RERANK", "always", "on"),
        ("RAG_PASSAGE_FORM", "summary", "text"),
    ],
)
def test_it_wants_a_known_word(settings, name, bad, good):
    setattr(settings, name, bad)
    assert error_ids() == ["ragsite.E008"]
    setattr(settings, name, good)
    assert error_ids() == []


def test_it_wants_throttle_rates_that_parse(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "600", "anon": None}}
    assert error_ids() == ["ragsite.E008"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "10/hour"}}
    assert error_ids() == []


def test_it_wants_dense_or_bm25_search(settings):
    settings.RAG_SEARCH_DENSE = False
    settings.RAG_SEARCH_BM25 = False
    assert error_ids() == ["ragsite.E009"]
    settings.RAG_SEARCH_BM25 = True
    assert error_ids() == []


def test_it_wants_the_default_k_within_the_largest(settings):
    settings.RAG_SEARCH_DEFAULT_K = 60
    assert error_ids() == ["ragsite.E010"]


def test_it_wants_the_chunk_overlap_below_the_chunk_size(settings):
    settings.RAG_CHUNK_TOKENS = 64
    settings.RAG_CHUNK_OVERLAP = 64
    assert error_ids() == ["ragsite.E011"]
    settings.RAG_CHUNK_OVERLAP = 63
    assert error_ids() == []


def test_it_wants_the_chunk_cap_in_characters_above_ordinary_prose(settings):
    settings.RAG_CHUNK_TOKENS = 100
    settings.RAG_CHUNK_MAX_CHARS = 399  # under 4 characters a token
    assert error_ids() == ["ragsite.E014"]
    settings.RAG_CHUNK_MAX_CHARS = 400
    assert error_ids() == []


@pytest.mark.parametrize(
    "shorter, longer",
    [
        ("RAG_PARSE_TIMEOUT", "RAG_TASK_SOFT_TIME_LIMIT"),
        ("RAG_TASK_SOFT_TIME_LIMIT", "RAG_TASK_HARD_TIME_LIMIT"),
        ("RAG_LONG_TASK_SOFT_TIME_LIMIT", "RAG_LONG_TASK_HARD_TIME_LIMIT"),
    ],
)
def test_it_wants_each_time_limit_below_the_one_that_backs_it_up(settings, shorter, longer):
    setattr(settings, shorter, getattr(settings, longer))
    assert error_ids() == ["ragsite.E015"]
    setattr(settings, shorter, getattr(settings, longer) - 1)
    assert error_ids() == []


def test_it_wants_room_for_the_prompt_in_the_context(settings):
    settings.RAG_GENERATOR_MAX_TOKENS = settings.RAG_GENERATOR_CONTEXT
    assert error_ids() == ["ragsite.E012"]


@pytest.mark.parametrize(
    "name, bad, good",
    [
        ("RAG_TOXICITY_THRESHOLD", 0.0, 1.0),
        ("RAG_TOXICITY_THRESHOLD", 1.5, 0.5),
        ("RAG_MIN_RELEVANCE", 1.2, -0.2),
        ("RAG_EVIDENCE_THRESHOLD", 44.0, 0.0),
        ("RAG_EVIDENCE_THRESHOLD", -0.1, 1.0),
        ("RAG_INDEX_COMPACT_SHARE", 0.0, 1.0),
        ("RAG_FINETUNE_HELDOUT_SHARE", 1.0, 0.5),
        ("RAG_FINETUNE_MAX_MINUTES", 0.0, 0.5),
        ("RAG_GENERATION_READ_TIMEOUT", -1.0, 0.1),
        ("RAG_RERANK_BUDGET_MS", -5.0, 0.0),
        ("RAG_EMBEDDER_BATCH_WINDOW_MS", 5000.0, 0.0),
        ("RAG_GENERATOR_FINETUNE_LEARNING_RATE", 0.0, 1e-4),
        ("RAG_GENERATOR_FINETUNE_ABSENT_SHARE", 1.0, 0.0),
        ("RAG_ANSWERABILITY_ABSTENTION", 0.0, 1.0),
        ("RAG_ANSWERABILITY_HELDOUT_SHARE", 1.0, 0.5),
        ("RAG_FINETUNE_MIN_GAIN", -2.0, -0.5),
    ],
)
def test_it_wants_numbers_in_range(settings, name, bad, good):
    setattr(settings, name, bad)
    assert error_ids() == ["ragsite.E013"]
    setattr(settings, name, good)
    assert error_ids() == []


def test_it_names_the_setting_and_gives_a_hint(settings):
    settings.RAG_CHUNK_OVERLAP = 500
    (message,) = run_checks(tags=[checks.TAG])
    assert "RAG_CHUNK_OVERLAP (500)" in message.msg and message.hint


def test_it_stops_the_wsgi_and_worker_start_up_on_an_error(settings):
    checks.require_no_errors()  # the default passes
    checks.stop_worker_on_errors(sender=None)
    settings.RAG_FAISS_GPU = "maybe"
    with pytest.raises(SystemCheckError, match=r"ragsite\.E008"):
        checks.require_no_errors()
    with pytest.raises(SystemExit, match=r"RAG_FAISS_GPU is 'maybe'"):
        checks.stop_worker_on_errors(sender=None)


def _run(*args, **env):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_it_fails_manage_py_check_on_a_bad_environment_value():
    result = _run("manage.py", "check", RAG_CHUNK_OVERLAP="100")
    assert result.returncode == 1
    assert "(ragsite.E011) RAG_CHUNK_OVERLAP (100) must be below RAG_CHUNK_TOKENS (100)" in result.stderr


@pytest.mark.integration
def test_it_keeps_a_celery_worker_from_starting(tmp_path):
    result = _run(
        "-m",
        "celery",
        "-A",
        "ragsite",
        "worker",
        "--pool=solo",
        "-n",
        f"checks-{os.getpid()}@%h",
        RAG_EMBEDDER_DTYPE="fp8",
        RAG_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 1
    assert "(ragsite.E008) RAG_EMBEDDER_DTYPE is 'fp8'" in result.stderr


def test_every_number_read_as_a_float_has_a_range():
    """A float setting (envfloat in the settings modules) is checked at start by the app that owns it."""
    import re

    from generation import checks as generation_checks
    from retrieval import checks as retrieval_checks

    source = "".join((ROOT / "ragsite" / name).read_text() for name in ("rag_settings.py", "settings.py"))
    floats = set(re.findall(r"^(RAG_[A-Z0-9_]+) = envfloat\(", source, flags=re.M))
    ranged = set(retrieval_checks.RANGES) | set(generation_checks.RANGES)
    assert floats and floats - ranged == set()
