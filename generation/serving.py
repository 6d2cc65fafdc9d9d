"""Which generator model answers: the GGUF file the index of generator
versions names (RAG_GENERATOR_DIR/serving.json, written atomically by a
switch), else RAG_GENERATOR_MODEL (the packaged model). Every process reads
the file again when it changes, so a switch or a rollback reaches all of them
without a restart. generation/generator_versions.py keeps the rows.

With a shared file store (RAG_S3_BUCKET: several hosts) there is no shared
folder for that file: the active row is the choice, read per answer, and
its GGUF comes from the store into this host's cache (core/filestore.py).

`trying(path)` serves another model to the calling thread only, for as long
as the block runs: a fine-tuning run judges its candidate through the real
answer path that way, while other requests keep the serving model.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import threading
from pathlib import Path

from django.conf import settings

from core import filestore

log = logging.getLogger(__name__)

_trying: contextvars.ContextVar[str | None] = contextvars.ContextVar("generator_trying", default=None)
_lock = threading.Lock()
_seen: dict = {}  # registry path -> ((mtime_ns, size), entry)


def registry_path() -> Path:
    return Path(settings.RAG_GENERATOR_DIR) / "serving.json"


def entry() -> dict | None:
    """The registry's entry ({"name", "path"}), or None when no version was switched in."""
    if filestore.shared():
        return _active_row()
    path = registry_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _seen.get(str(path))
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.exception("Unreadable generator registry %s: serving the packaged model", path)
            value = None
        _seen[str(path)] = (stamp, value)
        return value


def _active_row() -> dict | None:
    from generation.generator_versions import PACKAGED
    from generation.models import GeneratorVersion

    row = GeneratorVersion.objects.filter(is_active=True).values("name", "path", "artifact").first()
    if row is None or row["name"] == PACKAGED:
        return None
    try:
        return {"name": row["name"], "path": filestore.local_file(row["path"], row["artifact"])}
    except OSError:
        log.exception("Generator %s could not be fetched from the file store", row["name"])
        return {"name": row["name"], "path": row["path"]}


def serving_model() -> str:
    """The GGUF file (or model folder) answers are generated with now."""
    trying = _trying.get()
    if trying:
        return trying
    current = entry()
    if current and current.get("path"):
        if os.path.exists(current["path"]):
            return current["path"]
        log.error("Generator %s is gone (%s): serving the packaged model", current.get("name"), current["path"])
    return str(settings.RAG_GENERATOR_MODEL)


def serving_name() -> str:
    current = entry()
    return (current or {}).get("name") or "packaged"


def set_serving(name: str, path: str | None) -> None:
    """Point every process at version `name` (path None: the packaged model).
    With a shared file store the caller's row update is the switch."""
    if filestore.shared():
        return
    target = registry_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps({"name": name, "path": path}), encoding="utf-8")
    os.replace(partial, target)


@contextlib.contextmanager
def trying(path: str):
    token = _trying.set(str(path))
    try:
        yield
    finally:
        _trying.reset(token)
