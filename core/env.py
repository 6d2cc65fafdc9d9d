"""Tiny environment helpers: a bad value fails loudly at start-up."""

import importlib.util
import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def data_dir(base: Path, configured: str) -> Path:
    """The data folder: `configured` (RAG_DATA_DIR), else data/ in `base`;
    under pytest data-test/, so tests never touch the data of a running site."""
    default = base / ("data-test" if "pytest" in sys.modules else "data")
    return Path(configured or default).resolve()


def private_file(path: Path) -> Path:
    """`path` readable by its owner alone (0600), created empty if missing:
    the SQLite database holds every user's questions and answers (SQLite
    gives its journal files the database file's mode). The folder is made
    owner-only (0700) when it is created here."""
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    return path


def package_file(package, *parts):
    """Path of a file shipped inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        return ""
    return str(Path(spec.origin).parent.joinpath(*parts))


def envstr(name, default=""):
    return os.environ.get(name, default)


def envbool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def envint(name, default, minimum=None):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def envfloat(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def hub_offline() -> None:
    """Before loading any Hugging Face library: never reach a model hub (models
    come from local folders), no progress bars, no experiment trackers."""
    for name, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("HF_DATASETS_OFFLINE", "1"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("WANDB_DISABLED", "true"),
    ):
        os.environ.setdefault(name, value)
