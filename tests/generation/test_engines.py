"""Engines and classifiers on real models: a Hugging Face folder through the
transformers engine, concurrent use of the llama.cpp engine, and the local
Hugging Face toxicity classifier (on a small model the test creates)."""

import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from generation.engines import engine_path
from generation.engines.base import generate
from generation.engines.llamacpp import LlamaCppEngine
from generation.engines.transformers_engine import TransformersEngine
from generation.guardrails import TransformersToxicityClassifier

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """The packaged GGUF converted to a Hugging Face folder (as build_engine does)."""
    from generation.trtllm import gguf_to_hf

    return gguf_to_hf(django_settings.RAG_GENERATOR_MODEL, tmp_path_factory.mktemp("hf") / "smollm2", dtype="float32")


def test_auto_picks_the_engine_from_the_configuration(settings, hf_folder):
    settings.RAG_GENERATOR_ENGINE = "auto"
    assert engine_path().endswith("BatchedLlamaCppEngine")  # RAG_GENERATOR_SLOTS answers decoded together
    settings.RAG_GENERATOR_SLOTS = 1
    assert engine_path().endswith(".LlamaCppEngine")
    settings.RAG_GENERATOR_MODEL = str(hf_folder)
    assert engine_path().endswith("TransformersEngine")
    settings.RAG_GENERATION_URL = "http://127.0.0.1:1"
    assert engine_path().endswith("OpenAICompatibleEngine")


def test_the_transformers_engine_streams_from_a_model_folder(hf_folder):
    engine = TransformersEngine(str(hf_folder), 2048, dtype="float32")
    pieces = list(engine.stream(MESSAGES, max_new_tokens=12))
    assert len(pieces) >= 2 and "Paris" in "".join(pieces)
    assert engine.count_tokens("The capital of France") >= 4
    # A stop sequence ends the answer before it, even across pieces.
    stopped = generate(engine, MESSAGES, max_new_tokens=12, stop=["aris"])
    assert "aris" not in stopped and "Paris" not in stopped


def test_the_static_cache_path_answers_as_the_dynamic_one(hf_folder):
    """The CUDA-graphs path (one static cache, reset per answer) forced on the
    CPU: the same greedy answers as the dynamic cache, answer after answer,
    whatever the prompt's length (a cache left full would change them)."""
    plain = TransformersEngine(str(hf_folder), 512, dtype="float32", cuda_graphs="off")
    static = TransformersEngine(str(hf_folder), 512, dtype="float32", cuda_graphs="on")
    questions = [MESSAGES, [{"role": "user", "content": "Say hello in French, then in Spanish."}], MESSAGES]
    expected = [generate(plain, q, max_new_tokens=10) for q in questions]
    assert [generate(static, q, max_new_tokens=10) for q in questions] == expected
    assert static._static_cache is not None and plain._static_cache is None


@pytest.mark.django_db
def test_the_whole_answer_path_runs_on_a_model_folder(settings, hf_folder, alice, handbook):
    from generation import services

    settings.RAG_GENERATOR_ENGINE = "auto"
    settings.RAG_GENERATOR_MODEL = str(hf_folder)
    settings.RAG_EMBEDDER_DTYPE = "float32"
    result = services.ask("What is the annual fee of the Gold card?", user=alice)
    assert result.found and result.answer and result.citations[0]["page"] == 2


def test_concurrent_requests_do_not_corrupt_each_other():
    engine = LlamaCppEngine(django_settings.RAG_GENERATOR_MODEL, 2048)
    questions = [
        [{"role": "user", "content": "Name a colour of the sky."}],
        [{"role": "user", "content": "What is two plus two?"}],
        [{"role": "user", "content": "Say hello in French."}],
    ]
    expected = [generate(engine, q, max_new_tokens=24) for q in questions]  # one at a time
    results = [None] * len(questions)

    def run(index):
        results[index] = generate(engine, questions[index], max_new_tokens=24)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == expected  # greedy decoding: the same text, as if alone


def make_classifier(folder: Path, toxic_bias: float) -> Path:
    """A small BERT sequence classifier whose head says `toxic` with a fixed
    confidence, with the embedder's own tokenizer."""
    import shutil

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        id2label={0: "non-toxic", 1: "toxic"},
        label2id={"non-toxic": 0, "toxic": 1},
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, toxic_bias]))
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(Path(django_settings.RAG_EMBEDDER_PATH) / name, folder / name)
    return folder


def test_the_local_hf_classifier_reads_its_labels(tmp_path):
    import math

    toxic = TransformersToxicityClassifier(str(make_classifier(tmp_path / "toxic", 3.0)))
    calm = TransformersToxicityClassifier(str(make_classifier(tmp_path / "calm", -3.0)))
    expected = 1 / (1 + math.exp(-3.0))
    assert toxic.score(["any text", "another"]) == pytest.approx([expected, expected], abs=1e-4)
    assert calm.score(["any text"])[0] == pytest.approx(1 - expected, abs=1e-4)


@pytest.mark.django_db
def test_a_configured_hf_classifier_guards_the_answers(settings, tmp_path, alice, handbook):
    from generation import services
    from generation.models import GuardrailEvent

    settings.RAG_GUARDRAIL_BACKEND = "generation.guardrails.TransformersToxicityClassifier"
    settings.RAG_GUARDRAIL_MODEL = str(make_classifier(tmp_path / "strict", 3.0))
    result = services.ask("What is the annual fee of the Gold card?", user=alice)
    assert result.guardrail["intervened"] and result.guardrail["direction"] == "question"
    assert GuardrailEvent.objects.get().score == pytest.approx(0.9526, abs=1e-3)


def test_the_prefix_cache_reuses_the_shared_start_of_prompts_and_changes_no_answer():
    engine = LlamaCppEngine(django_settings.RAG_GENERATOR_MODEL, 2048)
    system = {"role": "system", "content": "Answer in a few words, from general knowledge. " * 4}
    first = [system, {"role": "user", "content": "What is the capital of France?"}]
    second = [system, {"role": "user", "content": "What colour is a ripe banana?"}]
    answer_first = generate(engine, first, max_new_tokens=12)
    assert engine._cache.reused == 0
    answer_second = generate(engine, second, max_new_tokens=12)
    assert engine._cache.reused > 30  # the system prompt was not computed again
    assert generate(engine, first, max_new_tokens=12) == answer_first

    # The same answer from an empty cache.
    engine._cache.forget(engine._llm._ctx)
    assert generate(engine, second, max_new_tokens=12) == answer_second and engine._cache.reused == 0

    # A consumer that stops after one piece leaves no half-written cache behind.
    stream = engine.stream(first, max_new_tokens=12)
    next(stream)
    stream.close()
    assert engine._cache.tokens(engine._llm._ctx) == []
    assert generate(engine, second, max_new_tokens=12) == answer_second
