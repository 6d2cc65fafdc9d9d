#!/usr/bin/env bash
# The one prepared GPU check (bench/gpu.py): every CUDA path of the product in
# about 8 minutes, into bench/results/gpu.json (or $OUT/gpu.json on the device
# machine). On a machine without CUDA it prints what it would run and skips.
# GPU_MODELS=DIR: the weightless model folders of `bench/gpu.py --carry DIR`,
# filled there with random weights (a device machine the weights can't reach).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUTFILE=${OUT:+$OUT/gpu.json}
MODELS=()
if [ -n "${GPU_MODELS:-}" ]; then MODELS=(--models "$GPU_MODELS"); fi
exec timeout 540 "$PY" bench/gpu.py --out "${OUTFILE:-bench/results/gpu.json}" --minutes "${MINUTES:-8}" "${MODELS[@]}" "$@"
