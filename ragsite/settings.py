"""The settings: Django, security, the API, Celery here; the product's own
(retrieval, ingestion, fine-tuning, generation, answers) in
ragsite/rag_settings.py, imported below. Every knob is an environment
variable with an embedded default; `.env.example` lists them all."""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from core.env import data_dir, envbool, envint, envstr, private_file

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = data_dir(BASE_DIR, envstr("RAG_DATA_DIR"))
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
    "chat",
    "ragsite",
]

MIDDLEWARE = [
    "ragsite.middleware.RequestBodyLimitMiddleware",  # first: before anything reads a body
    "ragsite.middleware.NulQueryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "ragsite.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ragsite.middleware.DatabaseUnavailableMiddleware",  # last: it sees the views' exceptions first
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
    # Transactions take the write lock as they begin, so a writer waits its turn
    # (up to the timeout) instead of failing "database is locked" when a read
    # transaction turns into a write while another writes (a delete racing uploads).
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    if DATABASES["default"]["NAME"] and DATABASES["default"]["NAME"] != ":memory:":
        private_file(Path(DATABASES["default"]["NAME"]))  # 0600, before SQLite creates it 0644

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Django's model backend, throttled: wrong passwords are counted (ragsite.sign_in_throttle).
AUTHENTICATION_BACKENDS = ["ragsite.sign_in_throttle.ThrottledModelBackend"]
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
# The buffering proxy in front of gunicorn (docker/nginx.conf.template, rendered by
# `manage.py proxy_config`): a request's headers must arrive whole within
# RAG_PROXY_HEADER_TIMEOUT seconds, and a body may pause at most
# RAG_PROXY_BODY_TIMEOUT seconds between two reads, or nginx closes the connection.
RAG_PROXY_HEADER_TIMEOUT = envint("RAG_PROXY_HEADER_TIMEOUT", 10, minimum=1)
RAG_PROXY_BODY_TIMEOUT = envint("RAG_PROXY_BODY_TIMEOUT", 30, minimum=1)
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
# ... and after this many for any names from one address, every name from it (password spraying).
RAG_LOGIN_ADDRESS_FAILURES = envint("RAG_LOGIN_ADDRESS_FAILURES", 30, minimum=1)
RAG_LOGIN_WINDOW_MINUTES = envint("RAG_LOGIN_WINDOW_MINUTES", 15, minimum=1)
# Answers in flight per user (POST /api/ask, streamed or not; the chat asks
# through it): one more is refused (429) until one ends. Counted in the cache;
# a slot is free again 30 s after its process died (generation/answer_slots.py),
# or once its answer has not moved for RAG_ANSWER_SLOT_SECONDS (stuck).
RAG_MAX_ANSWERS_PER_USER = envint("RAG_MAX_ANSWERS_PER_USER", 2, minimum=1)
RAG_ANSWER_SLOT_SECONDS = envint("RAG_ANSWER_SLOT_SECONDS", 300, minimum=1)
# Answers in flight in one web process, all users together (working or
# waiting in the answer queue): one more is refused (503 with Retry-After)
# until one ends. An answer holds a server thread while it streams or waits:
# keep this below the server's threads (`make run` and docker serve 48), so
# that pages always have threads left.
RAG_MAX_ANSWERS_PER_PROCESS = envint("RAG_MAX_ANSWERS_PER_PROCESS", 40, minimum=1)
# Of those, at most RAG_ANSWER_CONCURRENCY do model work at once; the others
# wait in a fair order (round robin over users), shown their place, and give
# up after RAG_ANSWER_MAX_WAIT seconds with a clear message
# (generation/queueing.py). Match it to RAG_GENERATOR_SLOTS: the answers
# llama.cpp decodes together.
RAG_ANSWER_CONCURRENCY = envint("RAG_ANSWER_CONCURRENCY", 4, minimum=1)
RAG_ANSWER_MAX_WAIT = envint("RAG_ANSWER_MAX_WAIT", 60, minimum=1)
# GET /metrics (Prometheus): staff signed in, or a scraper sending
# "Authorization: Bearer <RAG_METRICS_TOKEN>" (empty: staff only).
RAG_METRICS_TOKEN = envstr("RAG_METRICS_TOKEN")

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
            "BACKEND": "ragsite.cache.ResilientRedisCache",  # a local count while Redis is down
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
# (`make run`: one solo worker); others may exclude it with -X. With the index
# on Milvus (RAG_MILVUS_URI) there is no single writer: index writes go to the
# default queue, and any worker on any host takes them.
CELERY_INDEX_QUEUE = envstr("CELERY_INDEX_QUEUE") or f"{CELERY_TASK_DEFAULT_QUEUE}-index"
CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, CELERY_INDEX_QUEUE: {}}
CELERY_TASK_ROUTES = (
    {}
    if envstr("RAG_MILVUS_URI")
    else {
        name: {"queue": CELERY_INDEX_QUEUE}
        for name in (
            "retrieval.tasks.index_document",
            "retrieval.tasks.remove_vectors",
            "retrieval.tasks.rebuild_index",
        )
    }
)
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
        "ingestion.tasks.sync_source",  # a large folder's first sync copies every file
    )
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The product's own settings: retrieval, ingestion, fine-tuning, generation, answers.
from ragsite.rag_settings import *  # noqa: E402, F403

# Celery beat (`celery worker -B` in `make run`, the `beat` service in docker/)
# looks for synced sources whose sync is due (ingestion/sync.py).
CELERY_BEAT_SCHEDULE = {
    "sync-due-sources": {"task": "ingestion.tasks.sync_due_sources", "schedule": float(RAG_SYNC_TICK_SECONDS)}  # noqa: F405
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

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
