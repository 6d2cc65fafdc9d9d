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


def is_slug(name: str) -> bool:
    """A name written for machines: no spaces, lower case or joined by dashes or underscores."""
    return not re.search(r"\s", name) and (name.islower() or bool(re.search(r"[-_]", name)))


def best(found: str, headings: list[str], filename: str) -> str:
    """`found` (the parser's title: metadata, or a Markdown file's top heading)
    if it is one; else the file's name when a person wrote it ("Zanzibar ferry
    rules.md"); else its first section heading; else its name as words."""
    stem = PurePath(filename).stem

    def usable(candidate: str) -> str:
        text = " ".join((candidate or "").split()).strip(" #:")
        return text if text and not _PLACEHOLDER.match(text) and text != stem and len(text) >= 3 else ""

    if usable(found):
        return usable(found)[:300]
    if not is_slug(stem):
        return stem[:300]
    for heading in headings[:3]:
        if usable(heading):
            return usable(heading)[:300]
    return from_filename(filename)[:300]
