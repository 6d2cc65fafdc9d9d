"""The buffering proxy's configuration: docker/nginx.conf.template with its
`${NAME}` places filled from the settings (issue #26, M1).

nginx's own variables (`$host`, `$remote_addr`) are left alone: only
upper-case names in braces are ours, and every one must be given, so a
misspelt name fails here instead of reaching nginx."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "docker" / "nginx.conf.template"
PLACE = re.compile(r"\$\{([A-Z_]+)\}")
# Sub-folders of the prefix that nginx writes to (the template's *_temp_path).
TEMP_FOLDERS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")
# Above the app's upload limit: the body limit middleware's form allowance
# (ragsite/middleware.py) plus one, so that the app says why a file is too large.
BODY_MARGIN_MB = 2
# Seconds nginx waits between two reads of an answer: gunicorn's --timeout.
READ_TIMEOUT = 300


@dataclass(frozen=True)
class ProxyOptions:
    listen: str  # host:port (or port) nginx listens on
    upstream: str  # host:port of gunicorn
    max_upload_mb: int
    header_timeout: int  # seconds
    body_timeout: int  # seconds
    read_timeout: int = READ_TIMEOUT

    @classmethod
    def from_settings(cls, listen: str, upstream: str) -> ProxyOptions:
        from django.conf import settings

        return cls(
            listen=listen,
            upstream=upstream,
            max_upload_mb=settings.RAG_MAX_UPLOAD_MB,
            header_timeout=settings.RAG_PROXY_HEADER_TIMEOUT,
            body_timeout=settings.RAG_PROXY_BODY_TIMEOUT,
        )

    def values(self) -> dict[str, str]:
        return {
            "LISTEN": self.listen,
            "UPSTREAM": self.upstream,
            "BODY_MB": str(self.max_upload_mb + BODY_MARGIN_MB),
            "HEADER_TIMEOUT": f"{self.header_timeout}s",
            "BODY_TIMEOUT": f"{self.body_timeout}s",
            "SEND_TIMEOUT": f"{max(self.body_timeout, 60)}s",
            "READ_TIMEOUT": f"{self.read_timeout}s",
        }


def render(template: str, values: dict[str, str]) -> str:
    """The template with every `${NAME}` replaced; a name without a value, or
    a value that would end an nginx directive, is a ValueError."""
    missing = sorted(set(PLACE.findall(template)) - values.keys())
    if missing:
        raise ValueError(f"The proxy template names {', '.join(missing)}, which have no value.")
    for name, value in values.items():
        if not value or re.search(r"[\s;{}#$'\"]", value):
            raise ValueError(f"{name}={value!r} cannot go into the nginx configuration.")
    return PLACE.sub(lambda match: values[match.group(1)], template)


# The user nginx's workers run as when it is started as root (Debian's names).
# They write the spooled bodies, so their temp folders must be theirs and
# reachable: under a fresh folder of the system's temp, not under a prefix
# whose parents they may not enter.
ROOT_WORKERS = ("nobody", "nogroup")


def write(prefix: Path, options: ProxyOptions, template: Path = TEMPLATE) -> Path:
    """nginx.conf rendered into `prefix` with the folders it writes to; the
    path of the file (start nginx with `-p prefix -c nginx.conf`)."""
    as_root = os.geteuid() == 0
    temp = Path(tempfile.mkdtemp(prefix="ragsite-proxy-")) if as_root else prefix / "temp"
    text = render(template.read_text(), {**options.values(), "TEMP": str(temp)})
    if as_root:
        text = f"user {' '.join(ROOT_WORKERS)};\n" + text
    prefix.mkdir(parents=True, exist_ok=True)
    for folder in (temp, *(temp / name for name in TEMP_FOLDERS)):
        folder.mkdir(parents=True, exist_ok=True)
        if as_root:
            shutil.chown(folder, *ROOT_WORKERS)
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path
