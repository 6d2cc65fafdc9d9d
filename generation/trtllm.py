"""Prepare a TensorRT-LLM engine for the GPU profile (served by `trtllm-serve`).

Three steps, each skipped when its output is there already:
1. a Hugging Face checkpoint: a configured folder, or the packaged GGUF
   converted with transformers' GGUF loading (needs the `gguf` and
   `accelerate` packages; the weights are dequantised, so the checkpoint is a
   plain float16 model);
2. a TensorRT-LLM checkpoint, converted from it by TensorRT-LLM's own
   `from_hugging_face` (its MODEL_MAP picks the class from config.json);
3. the engine: `trtllm-build` with a paged KV cache, sized by the largest
   batch and the generator's context window and answer budget.

Steps 2 and 3 need an NVIDIA GPU with CUDA and the `tensorrt_llm` package
(the NVIDIA TensorRT-LLM release image has both); on anything else only the
command lines can be shown. They were not run on a GPU in this repository.

Pure: no Django. `manage.py build_engine` fills the plan from settings;
docker/Dockerfile.trtllm runs `python -m generation.trtllm` (step 1 in a CPU
build stage, steps 2-3 on the generator's first start), where Django is not
installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Step 2 as a script for `python -c`: the conversion scripts under examples/
# move between TensorRT-LLM releases, the Python API does not.
CONVERT = """\
import json, sys
from pathlib import Path
from tensorrt_llm.models import MODEL_MAP
hf_dir, out_dir, dtype = sys.argv[1:4]
architecture = json.loads((Path(hf_dir) / "config.json").read_text())["architectures"][0]
MODEL_MAP[architecture].from_hugging_face(hf_dir, dtype=dtype).save_checkpoint(out_dir, save_config=True)
"""


TOKENIZER_FILES = {
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
}


class EngineBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class EnginePlan:
    engine_dir: Path
    max_batch_size: int
    max_input_len: int
    max_seq_len: int
    dtype: str = "float16"

    @property
    def hf_checkpoint_dir(self) -> Path:
        """Where the packaged GGUF is converted to when no checkpoint is configured."""
        return self.engine_dir.parent / "hf-checkpoint"

    @property
    def trtllm_checkpoint_dir(self) -> Path:
        return self.engine_dir.parent / "trtllm-checkpoint"

    @classmethod
    def for_generator(
        cls, engine_dir, *, context_tokens: int, max_new_tokens: int, max_batch_size: int, dtype: str = "float16"
    ) -> EnginePlan:
        """Sized like the in-process engine: the answer budget out of the context window."""
        return cls(
            Path(engine_dir),
            max_batch_size=max_batch_size,
            max_input_len=context_tokens - max_new_tokens,
            max_seq_len=context_tokens,
            dtype=dtype,
        )


def engine_built(engine_dir: Path) -> bool:
    return (Path(engine_dir) / "config.json").is_file() and any(Path(engine_dir).glob("*.engine"))


def is_hf_checkpoint(folder: Path) -> bool:
    folder = Path(folder)
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def gguf_to_hf(gguf_path: str | Path, out_dir: str | Path, dtype: str = "float16") -> Path:
    """A Hugging Face checkpoint (config, safetensors, tokenizer) from a GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if not gguf_path.is_file():
        raise EngineBuildError(f"GGUF model not found: {gguf_path}")
    folder, name = str(gguf_path.parent), gguf_path.name
    # dequantize=True: a plain model, which save_pretrained can write (a GGUF-quantised one it refuses).
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=getattr(torch, dtype), quantization_config=GgufConfig(dequantize=True)
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    partial = out_dir.with_name(out_dir.name + ".partial")  # never a half-written checkpoint under the real name
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.replace(out_dir)
    return out_dir


def resolve_checkpoint(plan: EnginePlan, checkpoint: str | Path | None, gguf_path: str | Path) -> Path:
    """The configured Hugging Face folder, else the GGUF converted (once) into the plan's folder."""
    if checkpoint:
        if not is_hf_checkpoint(Path(checkpoint)):
            raise EngineBuildError(f"Not a Hugging Face checkpoint (config.json + *.safetensors): {checkpoint}")
        return Path(checkpoint)
    if not is_hf_checkpoint(plan.hf_checkpoint_dir):
        log.info("Converting %s to a Hugging Face checkpoint in %s", gguf_path, plan.hf_checkpoint_dir)
        gguf_to_hf(gguf_path, plan.hf_checkpoint_dir, plan.dtype)
    return plan.hf_checkpoint_dir


def commands(plan: EnginePlan, checkpoint: Path) -> list[list[str]]:
    """Checkpoint conversion, then the engine build."""
    convert = [sys.executable, "-c", CONVERT, str(checkpoint), str(plan.trtllm_checkpoint_dir), plan.dtype]
    build = [
        "trtllm-build",
        "--checkpoint_dir",
        str(plan.trtllm_checkpoint_dir),
        "--output_dir",
        str(plan.engine_dir),
        "--kv_cache_type",
        "paged",
        "--max_batch_size",
        str(plan.max_batch_size),
        "--max_input_len",
        str(plan.max_input_len),
        "--max_seq_len",
        str(plan.max_seq_len),  # prompt + answer (trtllm-build has no max output length of its own)
    ]
    return [convert, build]


def show(command: list[str]) -> str:
    return shlex.join(command)


def missing_requirements() -> list[str]:
    """What this machine lacks to build an engine (empty when it can)."""
    missing = []
    if importlib.util.find_spec("tensorrt_llm") is None:
        missing.append("the tensorrt_llm package")
    if not _cuda_available():
        missing.append("an NVIDIA GPU with CUDA")
    return missing


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def build(plan: EnginePlan, checkpoint: Path, *, run=subprocess.run) -> Path:
    for command in commands(plan, checkpoint):
        log.info("Running %s", show(command))
        run(command, check=True)
    if not engine_built(plan.engine_dir):
        raise EngineBuildError(f"trtllm-build finished but left no engine in {plan.engine_dir}")
    copy_tokenizer(checkpoint, plan.engine_dir)
    return plan.engine_dir


def copy_tokenizer(checkpoint: Path, engine_dir: Path) -> None:
    """The engine folder holds no tokenizer; with these files `trtllm-serve ENGINE_DIR` finds one there."""
    for path in Path(checkpoint).iterdir():
        if path.name in TOKENIZER_FILES:
            shutil.copy2(path, Path(engine_dir) / path.name)


def prepare(
    plan: EnginePlan,
    *,
    checkpoint: str | Path | None = None,
    gguf_path: str | Path = "",
    dry_run: bool = False,
    force: bool = False,
    echo=print,
) -> bool:
    """Build the engine unless it is there already (or force); dry_run shows the
    steps only. Raises EngineBuildError on a machine that cannot build. True if built."""
    if dry_run:
        if not checkpoint:
            echo(
                f"# convert {gguf_path} to a Hugging Face checkpoint in {plan.hf_checkpoint_dir} (transformers + gguf)"
            )
        for command in commands(plan, Path(checkpoint) if checkpoint else plan.hf_checkpoint_dir):
            echo(show(command))
        return False
    if engine_built(plan.engine_dir) and not force:
        echo(f"Engine already built in {plan.engine_dir}; nothing to do.")
        return False
    if missing := missing_requirements():
        raise EngineBuildError(
            f"Cannot build a TensorRT-LLM engine here: this machine lacks {' and '.join(missing)}. Build it in the "
            "generator image of the GPU profile (docker/Dockerfile.trtllm), or pass --dry-run to see the commands."
        )
    build(plan, resolve_checkpoint(plan, checkpoint, gguf_path))
    echo(f"Engine built in {plan.engine_dir}")
    return True


def main(argv=None) -> int:
    """`python -m generation.trtllm ENGINE_DIR [--checkpoint DIR | --gguf FILE]`, for the generator image (no Django)."""
    parser = argparse.ArgumentParser(prog="python -m generation.trtllm", description=__doc__.splitlines()[0])
    parser.add_argument("engine_dir", type=Path)
    parser.add_argument("--checkpoint", help="Hugging Face checkpoint folder (else --gguf is converted)")
    parser.add_argument("--gguf", default="", help="GGUF file converted when no --checkpoint is given")
    parser.add_argument("--context", type=int, default=2048, help="context window in tokens (RAG_GENERATOR_CONTEXT)")
    parser.add_argument("--max-new-tokens", type=int, default=160, help="answer budget (RAG_GENERATOR_MAX_TOKENS)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="RAG_TRTLLM_MAX_BATCH_SIZE")
    parser.add_argument("--dry-run", action="store_true", help="print the steps only")
    parser.add_argument(
        "--checkpoint-only", action="store_true", help="stop after the Hugging Face checkpoint (step 1; runs on a CPU)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    plan = EnginePlan.for_generator(
        args.engine_dir,
        context_tokens=args.context,
        max_new_tokens=args.max_new_tokens,
        max_batch_size=args.max_batch_size,
    )
    try:
        if args.checkpoint_only:
            print(resolve_checkpoint(plan, args.checkpoint, args.gguf))
            return 0
        prepare(plan, checkpoint=args.checkpoint, gguf_path=args.gguf, dry_run=args.dry_run)
    except EngineBuildError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
