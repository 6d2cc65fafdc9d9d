"""A document's title as people read it: its own title (metadata, or the
first top heading), else its first heading, else its file name written as
words ("support-faq.md" → "Support faq"), never a slug. Pure: no Django."""

from __future__ import annotations

import re
from pathlib import PurePath

# Metadata titles that name the software or the template, not the document.
_PLACEHOLDER = re.compile(r"^(untitled|document\d*|title|microsoft word - .*|slide \d+|presentation\d*)$", re.I)


def from_filename(filename: str) -> str:
    """The file's name as words: separators become spaces, the first letter a capital."""
    words = " ".join(re.split(r"[-_.\s]+", PurePath(filename).stem)).strip()
    return (words[:1].upper() + words[1:]) if words else filename


def is_placeholder(title: str, filename: str) -> bool:
    """The title the upload gave (the file's name, as a slug or as words), not one found in the file."""
    stem = PurePath(filename).stem
    return title in (stem, from_filename(filename), "")


def best(found: str, headings: list[str], filename: str) -> str:
    """`found` (the parser's title) if it is one, else the first heading, else the file name as words."""
    for candidate in (found, *headings[:3]):
        text = " ".join((candidate or "").split()).strip(" #:")
        if text and not _PLACEHOLDER.match(text) and text != PurePath(filename).stem and len(text) >= 3:
            return text[:300]
    return from_filename(filename)[:300]
