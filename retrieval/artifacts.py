"""Retriever versions every host can load (issue #32): with a shared file
store (RAG_S3_BUCKET), a fine-tuned version's embedder and reranker folders
are stored as one archive when its run ends (recorded on its row), and a host
that lacks the folder at the path the row names loads this host's cached,
checked copy instead. Without a shared store paths are used as they are."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from core import filestore

log = logging.getLogger(__name__)

PUBLISHED = ("model", "reranker")  # what a version folder holds that serving loads


def publish(version) -> None:
    """Store the version's serving folders and record where, when the file
    store is shared (a no-op otherwise)."""
    if not filestore.shared():
        return
    folder = Path(version.path).parent
    with tempfile.TemporaryDirectory() as work:
        for name in PUBLISHED:
            if (folder / name).is_dir():
                shutil.copytree(folder / name, Path(work) / name)
        version.artifact = filestore.put_folder(f"retrievers/{version.name}", work)
    version.save(update_fields=["artifact", "updated"])
    log.info("Retriever %s stored as %s", version.name, version.artifact["name"])


def local_model(path: str) -> str:
    """The embedder folder to load for `path` on this host: `path` itself
    when it is here, else the cached copy of the stored version whose row
    names it (fetched once, checked by its digest)."""
    if not path or os.path.isdir(path) or not filestore.shared():
        return path
    from retrieval.models import RetrieverVersion

    version = RetrieverVersion.objects.filter(path=path).exclude(artifact={}).first()
    if version is None:
        return path  # loading it fails with the path in the error
    return str(filestore.local_folder(version.artifact) / "model")
