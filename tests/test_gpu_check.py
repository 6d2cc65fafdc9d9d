"""bench/gpu.sh on a machine without CUDA: it says what it would run, writes
a results file that says it skipped, and exits 0 (no figure made up)."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_check_skips_cleanly_without_cuda(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": str(tmp_path)}
    done = subprocess.run(["bash", "bench/gpu.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "would run" in done.stdout
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["device"] is None and "no CUDA" in result["skipped"]
    assert set(result["plan"]) == {
        "embedder",
        "retriever_finetune",
        "reranker_finetune",
        "generator_finetune",
        "transformers_engine",
        "faiss_gpu",
        "decode_overhead",
    }
    assert "steps" not in result  # nothing was measured
