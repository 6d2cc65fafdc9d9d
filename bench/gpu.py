"""The one prepared GPU check (issue #27): every path a GPU serves here, run
within about 8 minutes on a machine with CUDA, into one results file.

    bash bench/gpu.sh            # or: .venv/bin/python bench/gpu.py [--out FILE] [--minutes 8]

Steps (each with its share of the budget; a step that fails is recorded with
its error and the next one runs):

1. embedder: passages per second of the packaged embedder on CUDA against
   the CPU, same texts, same batch size;
2. retriever fine-tuning: training steps per second (sentence-transformers
   trainer, MultipleNegativesRanking loss) on CUDA;
3. reranker fine-tuning: steps per second of a cross-encoder head on the
   packaged MiniLM on CUDA;
4. generator fine-tuning: SFT steps per second of the packaged generator
   (the GGUF converted to a Hugging Face checkpoint) on CUDA;
5. transformers engine: time to first token and decode tokens per second on
   CUDA for a RAG-sized prompt;
6. GPU FAISS: search throughput when faiss with GPU support imports (it is
   not on the device machine unless carried).

Without CUDA it writes the plan and "skipped" with the reason, and exits 0:
no figure is ever made up on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
)
PLAN = {
    "embedder": "packaged MiniLM embedder: passages/s on cuda vs cpu (512 passages, batch 64)",
    "retriever_finetune": "sentence-transformers fine-tuning of the embedder: steps/s on cuda (batch 32)",
    "reranker_finetune": "cross-encoder fine-tuning from the packaged MiniLM: steps/s on cuda (batch 32)",
    "generator_finetune": "SFT of the packaged SmolLM2 checkpoint (from its GGUF): steps/s on cuda (batch 4)",
    "transformers_engine": "transformers engine on cuda: time to first token and decode tokens/s (~800-token prompt)",
    "faiss_gpu": "GPU FAISS flat inner-product search: queries/s (skipped when faiss has no GPU support)",
}


def cuda_device() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def passages(count: int) -> list[str]:
    base = (ROOT / "demo").glob("*")
    text = " ".join(p.read_text(errors="ignore") for p in sorted(base) if p.suffix in (".md", ".txt", ".html"))
    words = text.split() or ["word"] * 100
    return [" ".join(words[(i * 37) % max(1, len(words) - 120) :][:100]) for i in range(count)]


def step_embedder(budget: float) -> dict:
    from sentence_transformers import SentenceTransformer

    from ragsite.rag_settings import RAG_EMBEDDER_PATH

    texts = passages(512)
    found = {}
    for device in ("cuda", "cpu"):
        model = SentenceTransformer(RAG_EMBEDDER_PATH, device=device)
        model.encode(texts[:64], batch_size=64)  # warm
        started = time.perf_counter()
        model.encode(texts, batch_size=64)
        found[f"{device}_passages_per_second"] = round(len(texts) / (time.perf_counter() - started), 1)
    found["speedup"] = round(found["cuda_passages_per_second"] / found["cpu_passages_per_second"], 2)
    return found


def _steps_per_second(model, batches, budget: float) -> dict:
    import torch

    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5)
    done, started = 0, time.perf_counter()
    for batch in batches:
        loss = batch()
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        done += 1
        if time.perf_counter() - started > budget:
            break
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"steps": done, "seconds": round(seconds, 2), "steps_per_second": round(done / seconds, 2)}


def step_retriever_finetune(budget: float) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from ragsite.rag_settings import RAG_EMBEDDER_PATH

    model = SentenceTransformer(RAG_EMBEDDER_PATH, device="cuda")
    model.train()
    texts = passages(64)

    def batch():
        queries = model.tokenize([t[:60] for t in texts[:32]])
        positives = model.tokenize(texts[:32])
        q = model({k: v.to("cuda") for k, v in queries.items()})["sentence_embedding"]
        p = model({k: v.to("cuda") for k, v in positives.items()})["sentence_embedding"]
        scores = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(p, dim=-1).T * 20
        return torch.nn.functional.cross_entropy(scores, torch.arange(len(q), device="cuda"))

    return _steps_per_second(model, (batch for _ in range(10_000)), budget)


def step_reranker_finetune(budget: float) -> dict:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ragsite.rag_settings import RAG_EMBEDDER_PATH

    tokenizer = AutoTokenizer.from_pretrained(RAG_EMBEDDER_PATH)
    encoder = AutoModel.from_pretrained(RAG_EMBEDDER_PATH).to("cuda")
    head = torch.nn.Linear(encoder.config.hidden_size, 1).to("cuda")
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head})
    texts = passages(64)
    pairs = tokenizer([t[:60] for t in texts[:32]], texts[:32], padding=True, truncation=True, return_tensors="pt")
    pairs = {k: v.to("cuda") for k, v in pairs.items()}
    labels = torch.tensor([float(i % 2) for i in range(32)], device="cuda")

    def batch():
        logits = head(encoder(**pairs).last_hidden_state[:, 0]).squeeze(-1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)

    return _steps_per_second(model, (batch for _ in range(10_000)), budget)


def _generator_checkpoint() -> str:
    from generation.trtllm import gguf_to_hf
    from ragsite.rag_settings import RAG_GENERATOR_MODEL

    folder = Path(tempfile.gettempdir()) / "rag-gpu-generator"
    if not (folder / "config.json").is_file():
        gguf_to_hf(RAG_GENERATOR_MODEL, folder, "float32")
    return str(folder)


def step_generator_finetune(budget: float) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = _generator_checkpoint()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, torch_dtype=torch.bfloat16).to("cuda")
    model.train()
    texts = passages(8)
    encoded = tokenizer(texts[:4], padding=True, truncation=True, max_length=512, return_tensors="pt").to("cuda")

    def batch():
        return model(**encoded, labels=encoded["input_ids"]).loss

    return _steps_per_second(model, (batch for _ in range(10_000)), budget)


def step_transformers_engine(budget: float) -> dict:
    from generation.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(_generator_checkpoint(), 2048)
    context = " ".join(passages(8))[:3500]
    messages = [
        {"role": "system", "content": "Answer from the evidence only, citing it as [1]."},
        {"role": "user", "content": f"Evidence:\n[1] {context}\n\nQuestion: what does the evidence say about fees?"},
    ]
    "".join(engine.stream(messages, max_new_tokens=8))  # warm
    started = time.perf_counter()
    first, pieces = None, 0
    for _piece in engine.stream(messages, max_new_tokens=128):
        if first is None:
            first = time.perf_counter() - started
        pieces += 1
    total = time.perf_counter() - started
    decode = (pieces - 1) / (total - first) if first is not None and pieces > 1 and total > first else None
    return {
        "device": str(getattr(engine, "device", "")),
        "prompt_tokens": engine.count_tokens(messages[1]["content"]),
        "time_to_first_token_s": round(first or 0.0, 3),
        "decode_pieces_per_second": round(decode, 1) if decode else None,
    }


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu.json"))
    parser.add_argument("--minutes", type=float, default=8.0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = cuda_device()
    result = {
        "device": device,
        "host": platform.node(),
        "python": platform.python_version(),
        "plan": PLAN,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if device is None:
        result["skipped"] = "no CUDA device: nothing was run (torch.cuda.is_available() is false)"
        print("No CUDA device here; on a machine with one, bench/gpu.sh would run:")
        for name in STEPS:
            print(f"  {name}: {PLAN[name]}")
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
        import django

        django.setup()
        share = args.minutes * 60 / len(STEPS) * 0.6  # each step's measuring share; loading takes the rest
        result["steps"] = {}
        for name in STEPS:
            started = time.perf_counter()
            try:
                found = globals()[f"step_{name}"](share)
            except Exception as error:  # recorded; the next step still runs
                found = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc(limit=4)}
            found["wall_seconds"] = round(time.perf_counter() - started, 1)
            result["steps"][name] = found
            print(name, json.dumps(found), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
