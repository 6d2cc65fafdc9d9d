"""The one prepared GPU check (issue #27): every path a GPU serves here, run
within a few minutes on a machine with CUDA, into one results file.

    bash bench/gpu.sh                       # or: .venv/bin/python bench/gpu.py [--out FILE] [--minutes 8]
    .venv/bin/python bench/gpu.py --carry .gpu-carry     # here: what a bare device machine lacks
    .venv/bin/python bench/gpu.py --rehearse             # here: every step on the CPU, briefly

Steps (each with its share of the budget; a step that fails is recorded with
its error and the next one runs):

1. embedder: the product's embedder (retrieval/embedding.py, float16 on CUDA
   by its own choice) in passages per second and one-query latency, against
   float32 on CUDA and the product's CPU path, same texts, same batch; and
   how far the CUDA vectors are from the CPU ones (least cosine);
2. retriever fine-tuning: the product's trainer (retrieval/finetune/train.py,
   sentence-transformers, fp16 on CUDA) in steps per second, and a bare
   torch loop of the same loss beside it;
3. reranker fine-tuning: the product's cross-encoder trainer
   (retrieval/finetune/cross_encoder.py) in steps per second;
4. generator fine-tuning: the product's SFT (generation/finetune/sft.py,
   bf16 autocast on CUDA) in steps and tokens per second;
5. transformers engine: the product's engine on CUDA, time to first token
   and decode tokens per second for a RAG-sized prompt;
6. GPU FAISS: search throughput when faiss with GPU support imports (it is
   not on the device machine unless carried).

A device machine that cannot take the packaged weights (the carry limit is
64 MiB, the weights are 88 MB and 100 MB) gets `--carry`'s folders: the
packaged models' configs and tokenizers, filled there with seeded random
weights of the same architecture (`--models DIR`). Speeds do not depend on
the weights' values; the result says which weights ran.

Without CUDA it writes the plan and "skipped" with the reason, and exits 0:
no figure is ever made up on a CPU (`--rehearse` writes CPU figures marked as
a rehearsal, to test this script before a device is spent on it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS = (
    "embedder",
    "retriever_finetune",
    "reranker_finetune",
    "generator_finetune",
    "transformers_engine",
    "faiss_gpu",
    "decode_overhead",
)
PLAN = {
    "embedder": "the product's embedder: passages/s and query ms on cuda (float16) vs float32 cuda vs cpu (512 passages, batch 64)",
    "retriever_finetune": "the product's retriever fine-tuning (sentence-transformers trainer, fp16): steps/s on cuda (batch 32)",
    "reranker_finetune": "the product's cross-encoder fine-tuning from the packaged MiniLM: steps/s on cuda (batch 32)",
    "generator_finetune": "the product's SFT of the packaged SmolLM2 checkpoint (from its GGUF): steps/s on cuda (batch 4)",
    "transformers_engine": "the product's transformers engine on cuda: time to first token and decode tokens/s (~800-token prompt)",
    "decode_overhead": "where a decode step's time goes: one-token forwards timed bare, and generate() with a static cache (compiled, CUDA graphs)",
    "faiss_gpu": "GPU FAISS flat inner-product search: queries/s (skipped when faiss has no GPU support)",
}
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.onnx", "*.pt", "*.gguf")
DEVICE = "cuda"  # "cpu" in a rehearsal


def cuda_device() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def synchronize() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def passages(count: int) -> list[str]:
    base = (ROOT / "demo").glob("*")
    text = " ".join(p.read_text(errors="ignore") for p in sorted(base) if p.suffix in (".md", ".txt", ".html"))
    words = text.split() or ["word"] * 100
    return [" ".join(words[(i * 37) % max(1, len(words) - 120) :][:100]) for i in range(count)]


def triplets(count: int) -> list[tuple[str, str, str]]:
    texts = passages(count + 1)
    return [(" ".join(t.split()[:8]) + "?", t, texts[i + 1]) for i, t in enumerate(texts[:count])]


def setup_settings() -> str:
    """Django's settings: the site's own, or where the site's packages are
    not all there (a bare device machine), the product's settings alone."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    import django
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
        return "ragsite.settings"
    except (ImportError, ImproperlyConfigured) as error:
        from ragsite import rag_settings

        settings.configure(**{name: getattr(rag_settings, name) for name in dir(rag_settings) if name.isupper()})
        django.setup()
        return f"ragsite.rag_settings alone ({type(error).__name__}: {error})"


def prepare_carry(folder: Path) -> dict:
    """Here: the packaged embedder's folder and the packaged generator's
    checkpoint (from its GGUF) without their weights, for `--models`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
    import django

    django.setup()
    from django.conf import settings

    from generation.trtllm import gguf_to_hf

    ignore = shutil.ignore_patterns(*WEIGHT_FILES, "onnx", "openvino", "README.md", ".gitattributes")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(settings.RAG_EMBEDDER_PATH, folder / "embedder", ignore=ignore)
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = gguf_to_hf(settings.RAG_GENERATOR_MODEL, Path(scratch) / "generator", "float32")
        shutil.copytree(checkpoint, folder / "generator", ignore=ignore)
    sizes = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in folder.iterdir()}
    return {"folder": str(folder), "bytes": sizes}


def fill_random_weights(folder: Path) -> dict:
    """There: seeded random weights of each carried architecture, saved into
    its folder (once); the product then loads the folders as it would the
    packaged models."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    filled = {}
    for name, auto in (("embedder", AutoModel), ("generator", AutoModelForCausalLM)):
        path = folder / name
        if not any(path.glob("*.safetensors")):
            torch.manual_seed(0)
            model = auto.from_config(AutoConfig.from_pretrained(path))
            model.save_pretrained(path)
            filled[name] = sum(p.numel() for p in model.parameters())
    os.environ["RAG_EMBEDDER_PATH"] = str(folder / "embedder")
    os.environ["RAG_GPU_GENERATOR"] = str(folder / "generator")
    return {"weights": "random, seeded (same architecture and tokenizer as the packaged models)", "filled": filled}


def step_embedder(budget: float) -> dict:
    import numpy as np
    from django.conf import settings

    from retrieval.embedding import SentenceTransformerEmbedder

    texts = passages(512)
    questions = [f"what does {' '.join(t.split()[3:9])} mean?" for t in passages(100)]
    runs = (
        ("product_cuda", DEVICE, "auto"),
        ("cuda_float32", DEVICE, "float32"),
        ("cuda_bfloat16", DEVICE, "bfloat16"),
        ("product_cpu", "cpu", "auto"),
    )
    found, vectors = {}, {}
    for name, device, dtype in runs:
        embedder = SentenceTransformerEmbedder(settings.RAG_EMBEDDER_PATH, device=device, batch_size=64, dtype=dtype)
        embedder.embed_passages(texts)  # load and warm, every batch shape once
        synchronize()
        started = time.perf_counter()
        vectors[name] = embedder.embed_passages(texts)
        synchronize()
        found[f"{name}_passages_per_second"] = round(len(texts) / (time.perf_counter() - started), 1)
        found[f"{name}_dtype"] = embedder.dtype
        latencies = []
        for question in questions[20 * len(vectors) - 20 : 20 * len(vectors)]:  # new questions: no cache hit
            started = time.perf_counter()
            embedder.embed_queries([question])
            latencies.append((time.perf_counter() - started) * 1000)
        found[f"{name}_query_ms_p50"] = round(statistics.median(latencies), 2)
    found["speedup_product_cuda_over_cpu"] = round(
        found["product_cuda_passages_per_second"] / found["product_cpu_passages_per_second"], 2
    )
    agreement = np.sum(vectors["product_cuda"] * vectors["product_cpu"], axis=1)
    found["least_cosine_cuda_vs_cpu"] = round(float(agreement.min()), 5)
    return found


def step_retriever_finetune(budget: float) -> dict:
    from django.conf import settings

    from retrieval.finetune.train import train

    found = {"bare_torch_loop": _bare_retriever_loop(settings.RAG_EMBEDDER_PATH, budget * 0.3)}
    try:
        found["product"] = _product_training(train, budget * 0.6)
    except Exception as error:  # the bare loop's figure still stands
        found["product"] = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc(limit=6)}
    return found


def _bare_retriever_loop(path: str, budget: float) -> dict:
    """The same loss in a plain torch loop (fp32, no trainer), for comparison."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=DEVICE)
    model.train()
    texts = passages(64)
    queries = _tensors(model.tokenize([t[:60] for t in texts[:32]]))
    positives = _tensors(model.tokenize(texts[:32]))
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < budget:
        q = model(dict(queries))["sentence_embedding"]
        p = model(dict(positives))["sentence_embedding"]
        scores = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(p, dim=-1).T * 20
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(q), device=DEVICE))
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        done += 1
    synchronize()
    seconds = time.perf_counter() - started
    return {"steps": done, "seconds": round(seconds, 2), "steps_per_second": round(done / seconds, 2)}


def _tensors(features: dict) -> dict:
    return {k: v.to(DEVICE) for k, v in features.items() if hasattr(v, "to")}


def step_reranker_finetune(budget: float) -> dict:
    from retrieval.finetune.cross_encoder import train

    return _product_training(train, budget * 0.8)


def _product_training(train, seconds: float) -> dict:
    """One of the product's trainers (retriever or reranker) from the embedder
    on the bench's triplets, stopped by `seconds`."""
    from django.conf import settings

    with tempfile.TemporaryDirectory() as output:
        result = train(
            settings.RAG_EMBEDDER_PATH,
            triplets(640),
            output,
            max_steps=100_000,
            max_minutes=seconds / 60,
            batch_size=32,
            seed=0,
        )
    return {**result.as_dict(), "steps_per_second": round(result.steps / result.seconds, 2)}


def _generator_checkpoint() -> str:
    if os.environ.get("RAG_GPU_GENERATOR"):
        return os.environ["RAG_GPU_GENERATOR"]
    from django.conf import settings

    from generation.trtllm import gguf_to_hf

    folder = Path(tempfile.gettempdir()) / "rag-gpu-generator"
    if not (folder / "config.json").is_file():
        gguf_to_hf(settings.RAG_GENERATOR_MODEL, folder, "float32")
    return str(folder)


def step_generator_finetune(budget: float) -> dict:
    from generation.finetune.sft import TrainOptions, train

    texts = passages(64)
    examples = [
        (
            [
                {"role": "system", "content": "Answer from the evidence only, citing it as [1]."},
                {"role": "user", "content": f"Evidence:\n[1] {' '.join(texts[i : i + 4])}\n\nQuestion: {t[:60]}?"},
            ],
            f"{' '.join(t.split()[:30])} [1]",
        )
        for i, t in enumerate(texts[:60])
    ]
    options = TrainOptions(max_steps=100_000, max_minutes=budget * 0.8 / 60, batch_size=4, warmup_steps=5)
    with tempfile.TemporaryDirectory() as output:
        result = train(_generator_checkpoint(), examples, output, options)
    found = result.as_dict()
    found.pop("loss_curve", None)
    found["steps_per_second"] = round(result.steps / result.seconds, 2) if result.seconds else None
    return found


def step_transformers_engine(budget: float) -> dict:
    """The product's engine as it serves (CUDA graphs on CUDA, by default)
    and with them off, on prompts of three lengths (a new length must not
    compile again)."""
    from generation.engines.transformers_engine import TransformersEngine

    found = {}
    for name, graphs in (("served", "auto"), ("cuda_graphs_off", "off")):
        engine = TransformersEngine(_generator_checkpoint(), 2048, cuda_graphs=graphs)
        started = time.perf_counter()
        _, model = engine.warm_up()
        found[f"{name}_warm_up_s"] = round(time.perf_counter() - started, 1)
        firsts, rates = [], []
        for length in (3500, 2400, 3000):
            context = " ".join(passages(8))[:length]
            messages = [
                {"role": "system", "content": "Answer from the evidence only, citing it as [1]."},
                {"role": "user", "content": f"Evidence:\n[1] {context}\n\nQuestion: what does the evidence say?"},
            ]
            started = time.perf_counter()
            first, text = None, []
            for piece in engine.stream(messages, max_new_tokens=128):
                if first is None:
                    first = time.perf_counter() - started
                text.append(piece)
            total = time.perf_counter() - started
            firsts.append(round(first or 0.0, 3))
            tokens = engine.count_tokens("".join(text))  # the streamer's pieces are words, not tokens
            rates.append(round((tokens - 1) / (total - first), 1) if first and tokens > 1 and total > first else None)
        found[f"{name}_device"] = f"{model.device} {model.dtype}"
        found[f"{name}_time_to_first_token_s"] = firsts
        found[f"{name}_decode_tokens_per_second"] = rates
        del engine, model
    return found


def step_faiss_gpu(budget: float) -> dict:
    try:
        import faiss
    except ImportError:
        return {"skipped": "faiss is not installed here (carry faiss-gpu to run it)"}
    if not hasattr(faiss, "StandardGpuResources"):
        return {"skipped": "this faiss has no GPU support"}
    import numpy as np

    vectors = np.random.default_rng(0).standard_normal((200_000, 384)).astype("float32")
    queries = vectors[:1000]
    index = faiss.GpuIndexFlatIP(faiss.StandardGpuResources(), 384)
    index.add(vectors)
    started = time.perf_counter()
    index.search(queries, 10)
    return {"queries_per_second": round(len(queries) / (time.perf_counter() - started), 1), "vectors": len(vectors)}


def step_decode_overhead(budget: float) -> dict:
    """A decode step of the engine's model, bare (a loop of one-token forwards
    with the cache, no generate()) and through generate() with a static cache,
    which transformers compiles into CUDA graphs: how much of a step is the
    model's arithmetic and how much the launching of its kernels."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = _generator_checkpoint()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float16).to(DEVICE).eval()
    prompt = tokenizer(" ".join(passages(8))[:3500], return_tensors="pt").to(DEVICE)
    found = {}
    with torch.no_grad():
        out = model(**prompt, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        times = []
        for _ in range(32):
            synchronize()
            started = time.perf_counter()
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            synchronize()
            times.append((time.perf_counter() - started) * 1000)
        found["bare_forward_ms_p50"] = round(statistics.median(times[4:]), 2)
        for name, extra in (
            ("generate_dynamic_cache", {}),
            ("generate_static_cache", {"cache_implementation": "static"}),
        ):
            try:
                rates = []
                for _ in range(3):  # the first static-cache call compiles
                    synchronize()
                    started = time.perf_counter()
                    generated = model.generate(**prompt, max_new_tokens=64, min_new_tokens=64, do_sample=False, **extra)
                    synchronize()
                    rates.append((generated.shape[1] - prompt["input_ids"].shape[1]) / (time.perf_counter() - started))
                found[f"{name}_tokens_per_second"] = [round(rate, 1) for rate in rates]
            except Exception as error:
                found[f"{name}_error"] = f"{type(error).__name__}: {str(error)[:300]}"
    return found


def run_steps(result: dict, chosen: list[str], minutes: float, save) -> None:
    share = minutes * 60 / len(STEPS)  # each step's share; loading takes part of it
    result["steps"] = {}
    for name in chosen:
        started = time.perf_counter()
        try:
            found = globals()[f"step_{name}"](share)
        except Exception as error:  # recorded; the next step still runs
            found = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc(limit=6)}
        found["wall_seconds"] = round(time.perf_counter() - started, 1)
        result["steps"][name] = found
        print(name, json.dumps(found), flush=True)
        save(result)  # what ran is kept if a later step is killed


def main() -> int:
    global DEVICE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu.json"))
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--carry", type=Path, help="write the weightless model folders here, and stop")
    parser.add_argument("--models", type=Path, help="carried folders (from --carry) to fill with random weights")
    parser.add_argument("--steps", default=",".join(STEPS), help="the steps to run, comma-separated")
    parser.add_argument("--rehearse", action="store_true", help="run every step on the CPU (figures marked so)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.carry:
        print(json.dumps(prepare_carry(args.carry)))
        return 0
    device = cuda_device()
    result = {
        "device": device,
        "host": platform.node(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "plan": PLAN,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if args.rehearse:
        DEVICE, device = "cpu", "cpu (a rehearsal: no figure here is a GPU's)"
        result["device"] = device
    if device is None:
        result["skipped"] = "no CUDA device: nothing was run (torch.cuda.is_available() is false)"
        print("No CUDA device here; on a machine with one, bench/gpu.sh would run:")
        for name in STEPS:
            print(f"  {name}: {PLAN[name]}")
    else:
        if args.models:
            result["models"] = fill_random_weights(args.models)
        result["settings"] = setup_settings()
        result["versions"] = versions()
        chosen = [name for name in args.steps.split(",") if name in STEPS]
        run_steps(result, chosen, args.minutes, lambda found: save(args.out, found))
    save(args.out, result)
    print(args.out)
    return 0


def save(out: str, result: dict) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "sentence-transformers", "datasets", "accelerate", "django"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


if __name__ == "__main__":
    sys.exit(main())
