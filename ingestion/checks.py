"""System checks of ingestion's settings (core/checks.py says how they run): chunk
sizes, the parse time limit against the task's, OCR and the synced sources' roots."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning

from core.checks import order_errors

# Below this many characters a token, RAG_CHUNK_MAX_CHARS would cut ordinary
# prose (4 to 6 characters a token in English) by characters, not by tokens.
MIN_CHARS_PER_TOKEN = 4


def check_chunks(app_configs=None, **kwargs):
    """E011: chunk overlap not below chunk size. E014: the chunk cap in
    characters would cut ordinary passages short of the token budget."""
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
    return errors


def check_parse_time(app_configs=None, **kwargs):
    """E015: RAG_PARSE_TIMEOUT not below the task's soft time limit."""
    return order_errors(
        [
            (
                "RAG_PARSE_TIMEOUT",
                "RAG_TASK_SOFT_TIME_LIMIT",
                "a slow document should fail with the parse limit's reason",
            )
        ],
        "ragsite.E015",
    )


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


ALL = (check_chunks, check_parse_time, check_ocr)
