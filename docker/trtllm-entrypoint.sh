#!/bin/sh
# Entrypoint of docker/Dockerfile.trtllm: build the TensorRT-LLM engine once into
# the /engines volume (skipped when it is there), then serve it with trtllm-serve.
# Sizes come from the same variables as the app (.env): RAG_GENERATOR_CONTEXT,
# RAG_GENERATOR_MAX_TOKENS, RAG_TRTLLM_MAX_BATCH_SIZE; a changed size needs the
# old engine removed (docker volume rm ragsite_trtllm). Extra arguments go to trtllm-serve.
# NOT RUN here: no GPU on this repository's machines.
set -e

CONTEXT="${RAG_GENERATOR_CONTEXT:-2048}"
MAX_NEW_TOKENS="${RAG_GENERATOR_MAX_TOKENS:-160}"
MAX_BATCH_SIZE="${RAG_TRTLLM_MAX_BATCH_SIZE:-8}"

python3 -m generation.trtllm "$ENGINE_DIR" --checkpoint "${RAG_TRTLLM_CHECKPOINT:-$HF_CHECKPOINT}" \
  --context "$CONTEXT" --max-new-tokens "$MAX_NEW_TOKENS" --max-batch-size "$MAX_BATCH_SIZE"

# The build put the tokenizer beside the engine (generation/trtllm.py: copy_tokenizer).
exec trtllm-serve "$ENGINE_DIR" --backend tensorrt --tokenizer "$ENGINE_DIR" \
  --host 0.0.0.0 --port 8000 --max_batch_size "$MAX_BATCH_SIZE" --max_seq_len "$CONTEXT" "$@"
