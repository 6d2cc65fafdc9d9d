"""Where a synced source's files are read from. Pure: no Django.

A reader lists a source's files with what tells a change cheaply (size and
modification time), hashes one when that changed, and opens one for
ingestion; ingestion/sync.py decides what each listing means for the
collection. A folder on the server (a share mounted there included) is the
first kind; a cloud drive is another reader with the same four methods,
registered in READERS.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

BLOCK = 1024 * 1024


class SourceUnavailable(Exception):
    """The source cannot be listed now (unmounted, gone, unreadable): its sync pauses."""


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the source, "/" between folders
    size: int
    mtime_ns: int


class Reader(Protocol):
    def check(self) -> None:
        """Raise SourceUnavailable when the source cannot be listed now."""

    def entries(self) -> Iterator[Entry]:
        """Every file of the source (hidden and temporary files left out)."""

    def digest(self, path: str) -> str:
        """The SHA-256 of a file's bytes (OSError when it cannot be read)."""

    def open(self, path: str) -> BinaryIO:
        """The file for reading (OSError when it cannot be read)."""


def is_hidden(name: str) -> bool:
    """Files nobody means as documents: dot files, Office's lock files (~$…), editors' backups (…~)."""
    return name.startswith((".", "~$")) or name.endswith("~") or name.lower() in {"thumbs.db", "desktop.ini"}


def under_roots(location: Path, roots: list[Path]) -> bool:
    resolved = location.resolve()
    return any(resolved == root.resolve() or resolved.is_relative_to(root.resolve()) for root in roots)


def location_problem(location: str, roots: list[Path]) -> str:
    """Why a folder cannot be registered as a source ("" when it can)."""
    if not location or not Path(location).is_absolute():
        return "Give the folder's absolute path on the server."
    path = Path(location)
    if not under_roots(path, roots):
        allowed = ", ".join(str(root) for root in roots) or "(none: RAG_SYNC_ROOTS is empty)"
        return f"The folder must be under one of the folders this server syncs from (RAG_SYNC_ROOTS): {allowed}."
    if not path.is_dir():
        return "No such folder on the server (or it is not a folder)."
    return ""


class FolderReader:
    """A folder on this server, read recursively. Files and links that lead
    outside the allowed roots are left out (a link cannot pull in /etc)."""

    def __init__(self, location: str, roots: list[Path]):
        self.root = Path(location)
        self.roots = roots

    def check(self) -> None:
        if not under_roots(self.root, self.roots):
            raise SourceUnavailable("The folder is no longer under RAG_SYNC_ROOTS.")
        if not self.root.exists():
            raise SourceUnavailable("The folder is gone (moved, deleted or unmounted).")
        if not self.root.is_dir():
            raise SourceUnavailable("The location is no longer a folder.")
        try:
            with os.scandir(self.root):
                pass
        except OSError as exc:
            raise SourceUnavailable(f"The folder cannot be read ({exc.strerror or exc}).") from None

    def entries(self) -> Iterator[Entry]:
        for folder, folders, files in os.walk(self.root, onerror=_raise):
            folders[:] = sorted(name for name in folders if not is_hidden(name))
            for name in sorted(files):
                if is_hidden(name):
                    continue
                full = Path(folder) / name
                try:
                    if full.is_symlink() and not under_roots(full, self.roots):
                        continue
                    stat = full.stat()
                except OSError:  # gone between the listing and the stat, or a broken link
                    continue
                relative = PurePosixPath(*full.relative_to(self.root).parts)
                yield Entry(str(relative), stat.st_size, stat.st_mtime_ns)

    def _path(self, path: str) -> Path:
        full = self.root.joinpath(*PurePosixPath(path).parts)
        if not under_roots(full, self.roots):
            raise PermissionError(f"{path} leads outside the folders this server syncs from.")
        return full

    def digest(self, path: str) -> str:
        digest = hashlib.sha256()
        with self._path(path).open("rb") as handle:
            while block := handle.read(BLOCK):
                digest.update(block)
        return digest.hexdigest()

    def open(self, path: str) -> BinaryIO:
        return self._path(path).open("rb")


def _raise(error: OSError) -> None:
    where = f" {error.filename}" if error.filename else ""
    raise SourceUnavailable(f"The folder{where} could not be listed ({error.strerror or error}).")


READERS = {"folder": FolderReader}


def reader_for(kind: str, location: str, roots: list[Path]) -> Reader:
    return READERS[kind](location, roots)
