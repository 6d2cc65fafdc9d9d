"""Markdown for the chat: answers and passages rendered by markdown-it-py
(raw HTML off: written tags come out as text) and then sanitised by nh3
(an allowlist: no attributes but links' http(s)/mailto addresses), so nothing
a document or the model writes becomes markup or script.

The chat's own marks go in after sanitising, from offsets into the source
text: `[n]` citation links, the cited sentence (`<mark>`) and sentences no
passage supports (`<span class="unsupported">`). They travel through the
renderer as private-use characters and become tags around each piece of
text between them, so a mark that crosses a paragraph or a list item still
gives balanced HTML."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("default", {"html": False}).disable("image")  # tables, strikethrough; no images

# Tags only: no class, style (the CSP forbids inline styles), title or event attributes.
_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "s",
    "del",
    "code",
    "pre",
    "blockquote",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
}
_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
_SCHEMES = {"http", "https", "mailto"}

# Private-use characters for the marks; any in the source are replaced first (same length: offsets hold).
MARK_ON, MARK_OFF, UNSUPPORTED_ON, UNSUPPORTED_OFF, CITE_OPEN, CITE_CLOSE = (chr(0xE000 + i) for i in range(6))
_OURS = re.compile("[\ue000-\ue005]")
_SWITCHES = {
    MARK_ON: ("mark", True),
    MARK_OFF: ("mark", False),
    UNSUPPORTED_ON: ("unsupported", True),
    UNSUPPORTED_OFF: ("unsupported", False),
}
_SWITCH = re.compile("([\ue000-\ue003])")
_CITE_MARKER = re.compile(r"\[(\d{1,4})\]")
_CITED = re.compile("\ue004(\\d+)\ue005")
# What opens a block at the start of a line: a mark placed before it would stop it being a heading or an item.
# A table row's leading pipe too: a mark before it makes the row's first cell empty (every cell one column off).
_BLOCK_PREFIX = re.compile(r"[ \t]*(?:#{1,6}[ \t]+|[-*+][ \t]+|\d{1,9}[.)][ \t]+|>[ \t]?|\|[ \t]*)*")


def render(text: str, *, highlight=(), unsupported=(), citations=(), anchor: str = "") -> str:
    """`text` as sanitised HTML. `highlight` and `unsupported`: [start, end]
    spans of `text`; `citations`: the numbers whose `[n]` become links to
    `#src-<anchor>-<n>` (other `[n]` stay text)."""
    text = _OURS.sub("\ufffd", text or "")
    text = _insert(
        text,
        [(s, e, MARK_ON, MARK_OFF) for s, e in highlight]
        + [(s, e, UNSUPPORTED_ON, UNSUPPORTED_OFF) for s, e in unsupported],
    )
    if citations:
        text = _CITE_MARKER.sub(lambda m: CITE_OPEN + m.group(1) + CITE_CLOSE, text)
    html = nh3.clean(
        _markdown.render(text),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        attribute_filter=_allowed,
        link_rel="noopener noreferrer nofollow",
    )
    html = _apply_switches(html)
    numbers = {int(n) for n in citations}

    def link(m):
        n = int(m.group(1))
        if n not in numbers:
            return f"[{n}]"
        return f'<a class="cite" href="#src-{anchor}-{n}" data-cite="{n}">[{n}]</a>'

    return _CITED.sub(link, html)


def _allowed(tag: str, attribute: str, value: str) -> str | None:
    """Only the allowlist's attributes (nh3 adds `title` and `lang` on every tag by default)."""
    ours = attribute in _ATTRIBUTES.get(tag, ()) or (tag, attribute) == ("a", "rel")  # rel: nh3's link_rel
    return value if ours else None


def _insert(text: str, spans) -> str:
    """`text` with each span's opening and closing characters put in, the
    opening moved past the markup that starts a block, both past blank space."""
    points = []
    for start, end, on, off in spans:
        start, end = _start(text, max(0, int(start))), min(len(text), int(end))
        while end > start and text[end - 1].isspace():
            end -= 1
        row = text.rfind("\n", 0, end) + 1
        if text[row:end].lstrip().startswith("|"):  # a table row: close inside its last cell, not after it
            while end > start and text[end - 1] in " \t|" and text[end - 2 : end] != "\\|":
                end -= 1
        if end > start:
            points += [(start, 1, on), (end, 0, off)]  # at one offset, close before opening
    out, cursor = [], 0
    for offset, _, char in sorted(points):
        out += [text[cursor:offset], char]
        cursor = offset
    out.append(text[cursor:])
    return "".join(out)


def _start(text: str, pos: int) -> int:
    while True:
        moved = pos
        while moved < len(text) and text[moved].isspace():
            moved += 1
        line_start = text.rfind("\n", 0, moved) + 1
        if not text[line_start:moved].strip():
            moved = max(moved, _BLOCK_PREFIX.match(text, line_start).end())
        if moved == pos:
            return pos
        pos = moved


def _apply_switches(html: str) -> str:
    state = {"mark": False, "unsupported": False}
    out = []
    for piece in re.split(r"(<[^>]*>)", html):
        if piece.startswith("<"):  # a tag: a switch inside one (a link's address) still counts
            for char in _SWITCH.findall(piece):
                name, value = _SWITCHES[char]
                state[name] = value
            out.append(_SWITCH.sub("", piece))
            continue
        for part in _SWITCH.split(piece):
            if part in _SWITCHES:
                name, value = _SWITCHES[part]
                state[name] = value
            elif part.strip():
                if state["unsupported"]:
                    part = f'<span class="unsupported">{part}</span>'
                if state["mark"]:
                    part = f"<mark>{part}</mark>"
                out.append(part)
            else:
                out.append(part)
    return "".join(out)
