"""Files every host reaches (issue #32): uploaded originals and saved model
versions, through Django's default storage.

By default that storage is the MEDIA_ROOT folder (one host, or a shared
filesystem). With RAG_S3_BUCKET set it is an S3 bucket (django-storages'
S3 backend: AWS, MinIO, any S3 API), and each host keeps a local cache
under RAG_CACHE_DIR of what it reads from it: parsers and the page renderer
need a file on disk. Stored names are content-addressed or versioned (a
document's file is named by its SHA-256; a model folder's archive by its
version and digest), so a cached copy whose digest matches is the stored
one, and is checked when fetched.

`locked(name)` is the one lock for a stored name, across hosts: a
PostgreSQL advisory lock when the database is PostgreSQL, else an flock
(SQLite: one host).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection

log = logging.getLogger(__name__)

BLOCK = 1024 * 1024


def shared() -> bool:
    """Whether files live in a store other hosts reach (S3), not in MEDIA_ROOT."""
    return bool(settings.RAG_S3_BUCKET)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def locked(name: str):
    """Exclusive use of the stored name `name` by one process on any host."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    folder = Path(settings.MEDIA_ROOT) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / (Path(name).name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- files -------------------------------------------------------------------
def exists(name: str) -> bool:
    return default_storage.exists(name)


def put(name: str, path: str | Path) -> None:
    """Store the local file `path` as `name` (unless it is there already)."""
    if default_storage.exists(name):
        return
    with open(path, "rb") as handle:
        saved = default_storage.save(name, File(handle))
    if saved != name:  # a storage that renames on a clash would break content addressing
        raise RuntimeError(f"The file store saved {name} as {saved}")


def delete(name: str) -> None:
    default_storage.delete(name)
    if shared():
        _cached(name).unlink(missing_ok=True)


def local_path(name: str, sha256: str = "") -> Path:
    """A path on this host holding the stored file `name`: the file itself
    in MEDIA_ROOT, or this host's cached copy of the shared one (fetched when
    missing, and checked against `sha256` when given). FileNotFoundError
    when the store lacks it."""
    if not shared():
        path = Path(settings.MEDIA_ROOT) / name
        if not path.exists():
            raise FileNotFoundError(name)
        return path
    path = _cached(name)
    if path.exists():  # verified when fetched, and stored names never change content
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fetch-")
    try:
        digest = hashlib.sha256()
        try:
            source = default_storage.open(name, "rb")
        except Exception as exc:  # every backend's "no such key"
            if not default_storage.exists(name):
                raise FileNotFoundError(name) from exc
            raise
        with os.fdopen(fd, "wb") as out, source:
            while block := source.read(BLOCK):
                digest.update(block)
                out.write(block)
        if sha256 and digest.hexdigest() != sha256:
            raise OSError(f"{name}: the stored file's SHA-256 is {digest.hexdigest()}, not {sha256}")
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    return path


def _cached(name: str) -> Path:
    path = (Path(settings.RAG_CACHE_DIR) / "files" / name).resolve()
    if Path(settings.RAG_CACHE_DIR).resolve() not in path.parents:
        raise ValueError(f"Bad stored name {name!r}")
    return path


# -- model versions ----------------------------------------------------------
def put_file(name: str, path: str | Path) -> dict:
    """Store one file of a version (a GGUF, a JSON artifact) under a name
    made of `name` and its digest; returns {"name", "sha256"} for its row."""
    sha = sha256_of(path)
    stored = f"artifacts/{name}-{sha[:16]}{Path(path).suffix}"
    put(stored, path)
    return {"name": stored, "sha256": sha}


def local_file(path: str, stored: dict) -> str:
    """`path` when this host has it, else this host's copy of the stored file."""
    if os.path.exists(path) or not stored or not shared():
        return path
    return str(local_path(stored["name"], stored["sha256"]))


def put_folder(name: str, folder: str | Path) -> dict:
    """Store the folder as one archive named after `name` and its digest;
    returns {"name", "sha256"} to record where the folder's version is kept."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(folder)))
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    stored = f"artifacts/{name}-{sha[:16]}.tar"
    Path(settings.RAG_CACHE_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.RAG_CACHE_DIR) as tmp:
        tmp.write(data)
        tmp.flush()
        put(stored, tmp.name)
    return {"name": stored, "sha256": sha}


def local_folder(stored: dict) -> Path:
    """This host's copy of a folder put_folder() stored, unpacked once into the cache."""
    target = Path(settings.RAG_CACHE_DIR) / "folders" / Path(stored["name"]).stem
    if (target / ".complete").exists():
        return target
    archive = local_path(stored["name"], stored["sha256"])
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")  # no links or paths out of the folder
        (work / ".complete").touch()
        try:
            os.rename(work, target)
        except OSError:  # another process unpacked it first
            if not (target / ".complete").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
