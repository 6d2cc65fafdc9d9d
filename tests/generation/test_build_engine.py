"""`manage.py build_engine` and generation.trtllm: the parts a CPU can check.
The TensorRT-LLM build itself needs an NVIDIA GPU and was not run here."""

import io
import json
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation import trtllm

# A string condition: evaluated when a test it marks runs, not when the module is
# collected (asking for CUDA imports torch: 2 s for every run that collects this file).
cannot_build = pytest.mark.skipif(
    "not trtllm.missing_requirements()", reason="this machine can build TensorRT-LLM engines"
)


@pytest.fixture
def plan(tmp_path):
    return trtllm.EnginePlan.for_generator(
        tmp_path / "trtllm" / "engine", context_tokens=2048, max_new_tokens=160, max_batch_size=8
    )


def fake_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_text("{}")
    return folder


@pytest.mark.slow
def test_it_converts_the_packaged_gguf_to_a_loadable_checkpoint(settings, plan):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = trtllm.resolve_checkpoint(plan, None, settings.RAG_GENERATOR_MODEL)

    assert folder == plan.hf_checkpoint_dir and trtllm.is_hf_checkpoint(folder)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in folder.iterdir()
    }
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(output[0][inputs["input_ids"].shape[1] :])  # the weights survived


def test_it_uses_a_configured_checkpoint_without_converting(plan, tmp_path):
    folder = fake_checkpoint(tmp_path / "my-model")
    assert trtllm.resolve_checkpoint(plan, folder, "/nonexistent.gguf") == folder
    assert not plan.hf_checkpoint_dir.exists()


def test_it_refuses_a_folder_that_is_no_checkpoint(plan, tmp_path):
    with pytest.raises(trtllm.EngineBuildError, match="Not a Hugging Face checkpoint"):
        trtllm.resolve_checkpoint(plan, tmp_path, "/nonexistent.gguf")


def test_it_builds_the_expected_command_lines(plan, tmp_path):
    convert, build = trtllm.commands(plan, tmp_path / "hf")

    assert convert[:2] == [sys.executable, "-c"]
    compile(convert[2], "convert", "exec")  # the conversion script is valid Python
    assert convert[3:] == [str(tmp_path / "hf"), str(tmp_path / "trtllm" / "trtllm-checkpoint"), "float16"]
    assert build == [
        "trtllm-build",
        "--checkpoint_dir",
        str(tmp_path / "trtllm" / "trtllm-checkpoint"),
        "--output_dir",
        str(tmp_path / "trtllm" / "engine"),
        "--kv_cache_type",
        "paged",
        "--max_batch_size",
        "8",
        "--max_input_len",
        "1888",
        "--max_seq_len",
        "2048",
    ]


def test_it_runs_the_commands_and_puts_the_tokenizer_beside_the_engine(plan, tmp_path):
    checkpoint = fake_checkpoint(tmp_path / "hf")
    ran = []

    def run(command, check):
        ran.append(command[0])
        if command[0] == "trtllm-build":  # what a real build leaves behind
            plan.engine_dir.mkdir(parents=True)
            (plan.engine_dir / "config.json").write_text("{}")
            (plan.engine_dir / "rank0.engine").write_bytes(b"")

    assert trtllm.build(plan, checkpoint, run=run) == plan.engine_dir
    assert ran == [sys.executable, "trtllm-build"]
    assert (plan.engine_dir / "tokenizer.json").is_file() and not (plan.engine_dir / "model.safetensors").exists()


@cannot_build
@pytest.mark.slow  # imports torch to ask for CUDA
def test_it_refuses_to_build_without_cuda(settings, tmp_path):
    settings.RAG_TRTLLM_ENGINE_DIR = tmp_path / "engine"
    with pytest.raises(CommandError, match="Cannot build a TensorRT-LLM engine here: this machine lacks"):
        call_command("build_engine")
    assert not (tmp_path / "engine").exists() and not (tmp_path / "hf-checkpoint").exists()


def test_it_prints_the_steps_with_dry_run(settings, tmp_path):
    settings.RAG_TRTLLM_ENGINE_DIR = tmp_path / "engine"
    settings.RAG_TRTLLM_MAX_BATCH_SIZE = 4
    out = io.StringIO()

    call_command("build_engine", "--dry-run", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"# convert {settings.RAG_GENERATOR_MODEL} to a Hugging Face checkpoint")
    assert lines[-1] == (
        f"trtllm-build --checkpoint_dir {tmp_path}/trtllm-checkpoint --output_dir {tmp_path}/engine "
        f"--kv_cache_type paged --max_batch_size 4 "
        f"--max_input_len {settings.RAG_GENERATOR_CONTEXT - settings.RAG_GENERATOR_MAX_TOKENS} "
        f"--max_seq_len {settings.RAG_GENERATOR_CONTEXT}"
    )
    assert not any(tmp_path.iterdir())  # nothing converted or built


def test_it_leaves_a_built_engine_alone(settings, tmp_path):
    engine = tmp_path / "engine"
    engine.mkdir()
    (engine / "config.json").write_text("{}")
    (engine / "rank0.engine").write_bytes(b"")
    out = io.StringIO()
    call_command("build_engine", "--engine-dir", str(engine), stdout=out)
    assert "already built" in out.getvalue()
