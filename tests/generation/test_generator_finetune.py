"""Fine-tuning the generator end to end (generation/finetune/), with the real
packaged model, real training, the real GGUF export and llama.cpp, on the
demo corpus: the loss mask, the export's round trip, the whole run, switching
and rolling back through the task, and a failed run. Numbers the run reports
are computed from real answers; only the mechanics are asserted here."""

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from generation import generator_versions, serving
from generation.engines import get_engine
from generation.finetune import examples as making
from generation.finetune import export, pipeline, sft
from generation.models import GeneratorVersion
from generation.services import ask
from generation.tasks import switch_generator
from ingestion.models import Chunk
from tests.conftest import DEMO, ingest_path

pytestmark = pytest.mark.slow
Status = GeneratorVersion.Status


@pytest.fixture(scope="session")
def packaged_checkpoint(tmp_path_factory):
    """The packaged GGUF converted to a Hugging Face checkpoint, once per test session."""
    from django.conf import settings

    from generation.trtllm import gguf_to_hf

    folder = tmp_path_factory.mktemp("generator") / "packaged-checkpoint"
    return gguf_to_hf(settings.RAG_GENERATOR_MODEL, folder, "float32")


@pytest.fixture
def generator_dir(settings, tmp_path, packaged_checkpoint):
    settings.RAG_GENERATOR_DIR = tmp_path / "generators"
    settings.RAG_GENERATOR_DIR.mkdir()
    (settings.RAG_GENERATOR_DIR / "packaged-checkpoint").symlink_to(packaged_checkpoint)
    yield settings.RAG_GENERATOR_DIR
    get_engine.cache_clear()


@pytest.fixture
def demo(db, settings, generator_dir):
    return [ingest_path(path) for path in sorted(DEMO.iterdir()) if path.is_file()]


def small_options(**overrides):
    values = dict(
        facts=24,
        llm_questions=0,
        heldout_questions=3,
        absent_share=0.25,
        max_steps=2,
        max_minutes=3.0,
        heldout_share=0.3,
        min_gain=-1.0,  # mechanics: any result switches in (real numbers: bench/finetune_generator.py)
        seed=5,
    )
    return pipeline.Options.from_settings(**{**values, **overrides})


def test_the_loss_is_on_the_answer_tokens_only(packaged_checkpoint):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(packaged_checkpoint))
    messages = [{"role": "system", "content": "Answer."}, {"role": "user", "content": "Evidence: [1] Fee: 95 euros."}]
    ids, labels = sft.encode(tokenizer, messages, "The fee is 95 euros [1].")
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_length = len(tokenizer(prompt, add_special_tokens=False).input_ids)
    assert labels[:prompt_length] == [sft.IGNORE] * prompt_length
    assert labels[prompt_length:] == ids[prompt_length:]
    assert tokenizer.decode(ids[prompt_length:]) == "The fee is 95 euros [1].<|im_end|>"


def test_the_export_keeps_metadata_and_tokenizer_and_matches_the_checkpoints_logits(packaged_checkpoint, tmp_path):
    import gguf
    from django.conf import settings

    out = export.export_gguf(packaged_checkpoint, settings.RAG_GENERATOR_MODEL, tmp_path / "model.gguf", name="t")
    original, exported = gguf.GGUFReader(settings.RAG_GENERATOR_MODEL), gguf.GGUFReader(out)
    changed = {"general.file_type", "general.name"}
    for name, field in original.fields.items():
        if name.startswith("GGUF.") or name in changed:
            continue
        assert exported.fields[name].contents() == field.contents(), name
    assert exported.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0
    assert [t.name for t in exported.tensors] == [t.name for t in original.tensors]
    kinds = {t.tensor_type.name for t in exported.tensors}
    assert kinds == {"Q8_0", "F32"}
    prompts = [
        "<|im_start|>user\nHow many days are in a week?<|im_end|>\n<|im_start|>assistant\n",
        "The capital of France is",
        "def add(a, b):\n    return",
    ]
    gap = export.logit_gap(out, packaged_checkpoint, prompts)
    assert gap.ok, gap.as_dict()
    assert gap.correlation >= export.MIN_CORRELATION and gap.clear >= 1


def asks_about_its_start(messages):
    """A question writer that asks about the passage's first words (a scripted LLM)."""
    passage = messages[-1]["content"].removeprefix("Passage: ")
    return "What is said about " + " ".join(passage.split()[:4]) + "?"


def test_a_whole_run_trains_exports_judges_and_switches_with_rollback(demo, generator_dir):
    version = pipeline.start(small_options(llm_questions=12), generate=asks_about_its_start)
    assert version.status == Status.ACTIVE and version.is_active, version.error
    assert Path(version.path).is_file() and (Path(version.checkpoint) / "config.json").is_file()
    assert version.metrics["export"]["ok"]
    assert version.training["steps"] == 2 and version.training["answer_tokens"] > 0
    assert set(version.durations) >= {"corpus", "questions", "examples", "train", "export", "evaluate"}
    assert version.metrics["before"]["questions"] == version.metrics["after"]["questions"] > 0

    # Training never saw a held-out document: every example's text comes from training documents.
    rows = [json.loads(line) for line in open(Path(version.path).parent / "examples.jsonl", encoding="utf-8")]
    assert {row["kind"] for row in rows} == {making.ANSWER, making.ABSENT}
    assert {row["method"] for row in rows} == {making.LLM, making.KEYWORD}
    by_kind = version.examples["by_kind"]
    assert sum(by_kind.values()) == len(rows)
    from retrieval.finetune.data import split_documents

    documents = {d.pk for d in demo if Chunk.objects.filter(document=d).exists()}
    split = split_documents(documents, 0.3, 5)
    held_text = list(Chunk.objects.filter(document_id__in=split.heldout).values_list("text", flat=True))
    assert set(split.train).isdisjoint(split.heldout)
    for row in rows:
        assert set(row["document_ids"]) <= set(split.train)
        for line in row["evidence"]:
            assert not any(line["text"] in text for text in held_text)
        if row["kind"] == making.ABSENT:  # no gold evidence, and the product's "not in the documents"
            assert row["gold"] is None and row["target"] == pipeline.making.NOT_FOUND_ANSWER
            assert row["chunk_id"] not in row["evidence_chunks"]
        else:
            assert row["target"].endswith(f"[{row['gold'] + 1}].")
            if row["method"] == making.LLM:  # the question was asked about the very fact the target states
                start = row["question"].removeprefix("What is said about ").rstrip("?")
                assert row["target"].startswith(start), (row["question"], row["target"])
            assert row["evidence_chunks"][row["gold"]] == row["chunk_id"]

    # Every process follows the registry: the engine now loads the new file; answers come from it.
    assert serving.serving_model() == version.path
    assert get_engine().model_path == version.path
    assert ask("What is the annual fee of the Platinum card?").as_dict()["answer"]

    packaged = generator_versions.packaged_version()
    switch_generator.apply(args=[packaged.pk])  # the task the admin queues: a rollback
    packaged.refresh_from_db()
    version.refresh_from_db()
    assert packaged.is_active and not version.is_active and version.status == Status.RETIRED
    assert get_engine().model_path == str(packaged.path)
    switch_generator.apply(args=[version.pk])
    assert GeneratorVersion.objects.get(pk=version.pk).is_active
    assert get_engine().model_path == version.path

    call_command("finetune_generator", "--switch", "packaged")
    assert serving.serving_name() == "packaged"


def test_a_failed_run_leaves_the_serving_model_answering(demo, generator_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(sft, "train", broken)
    before = serving.serving_model()
    with pytest.raises(RuntimeError):
        pipeline.start(small_options())
    version = GeneratorVersion.objects.exclude(name=generator_versions.PACKAGED).get()
    assert version.status == Status.FAILED and "train: RuntimeError: out of memory" in version.error
    assert serving.serving_model() == before and not version.is_active
    assert get_engine().model_path == before


def test_a_broken_model_file_is_not_switched_in(demo, generator_dir):
    version = generator_versions.new_version("packaged")
    Path(version.path).parent.mkdir(parents=True)
    Path(version.path).write_bytes(b"GGUF but not really")
    GeneratorVersion.objects.filter(pk=version.pk).update(status=Status.EVALUATED)
    with pytest.raises(generator_versions.SwitchError, match="does not load"):
        generator_versions.switch_to(version.pk)
    assert serving.serving_name() == "packaged"
    shutil.rmtree(Path(version.path).parent)


def test_the_admin_lists_versions_and_confirms_before_a_run(demo, admin_client):
    page = admin_client.get(reverse("admin:generation_generatorversion_changelist"))
    assert page.status_code == 200 and b"packaged" in page.content
    confirm = admin_client.get(reverse("admin:generation_generatorversion_finetune"))
    assert confirm.status_code == 200 and b"Start the run" in confirm.content
    url = reverse("admin:generation_generatorversion_changelist")
    packaged = GeneratorVersion.objects.get(name=generator_versions.PACKAGED)
    failed = generator_versions.new_version("packaged")
    GeneratorVersion.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    for version, said in ((packaged, b"already serving"), (failed, b"failed: it cannot be switched in")):
        page = admin_client.post(url, {"action": "switch_to_version", "_selected_action": [version.pk]}, follow=True)
        assert said in page.content
    assert serving.serving_name() == "packaged"
