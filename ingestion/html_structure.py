"""An HTML page's headings, kept through main-content extraction. Pure.

trafilatura finds a page's main text well, but on generated documentation
(DocBook, which PostgreSQL's and many manuals' HTML come from; Sphinx) it
drops the section headings, and it reads an admonition's "Note" title and
its paragraph as one heading line ("### Note On Windows, setting a value
..."). Passages are embedded and cited with their heading path, so a page
whose headings are lost or wrong gives every passage the wrong context.

`mark` rewrites the page before extraction: each section heading becomes a
paragraph holding a marker and its level, each term of a definition list
(`<dt>`: a setting, an option, a glossary word) a heading one level below
the section it is in, and an admonition title ("Note", "Warning") plain
text. `restore` turns the markers in the extracted Markdown back into
Markdown headings. A page without headings or definition lists comes
through unchanged.
"""

from __future__ import annotations

import re
import secrets
from html import unescape

# The marker survives extraction as text: trafilatura keeps paragraphs and
# list items, and escapes nothing in it. Its key is new for every page, so a
# page's own text cannot pass for one.
_MARK = "§§{key}h{level}§§ "
# A marked line, with the blank lines around it: one blank line each side after.
_MARKED = r"\n*^[ \t]*(?:[-*+][ \t]+)?(?:\*\*)?§§{key}h([1-6])§§[ \t]*(.*?)(?:\*\*)?[ \t]*$\n*"
# Text inside a heading or a term that is no part of its words.
_NOT_TEXT = ("script", "style", "noscript", "template")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
ADMONITIONS = frozenset({"note", "notes", "warning", "tip", "caution", "important", "hint", "danger", "attention"})
# Lists of links are navigation (a table of contents), not terms.
_NAVIGATION = re.compile(r"\b(toc|nav|navigation|menu|breadcrumbs?|sidebar)\b", re.I)
_SPACE = re.compile(r"\s+")
_TITLE = re.compile(r"<title[^>]*>([^<]*)</title>", re.I)
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def mark(html: str) -> tuple[str, str]:
    """The page with its headings and definition terms as markers (see
    module), and the key that `restore` needs to find them."""
    import lxml.html
    from lxml import etree

    key = secrets.token_hex(4)
    try:  # lxml refuses text that declares its own encoding: it is decoded already
        root = lxml.html.document_fromstring(_DECLARATION.sub("", html, count=1))
    except (etree.ParserError, ValueError):
        return html, key  # trafilatura reports what it cannot read
    changed = False
    section = 1  # the level of the heading in force, in document order
    for element in list(root.iter(*_HEADINGS, "dt")):
        if element.tag in _HEADINGS:
            text = _text(element)
            if not text:
                continue
            if text.rstrip(":").lower() in ADMONITIONS:
                _become(element, "p", text.rstrip(":") + ":")
            else:
                section = int(element.tag[1])
                _become(element, "p", _MARK.format(key=key, level=section) + text)
            changed = True
        elif not _is_navigation(element):
            text = _text(element)
            if text:
                level = min(6, section + 1 + _nesting(element))
                _become(element, "dt", _MARK.format(key=key, level=level) + text)
                changed = True
    return (lxml.html.tostring(root, encoding="unicode") if changed else html), key


def restore(markdown: str, key: str) -> str:
    """Markdown with the markers `mark` left (with `key`) turned back into headings."""
    if f"§§{key}h" not in markdown:
        return markdown
    marked = re.compile(_MARKED.format(key=re.escape(key)), re.M)
    restored = marked.sub(lambda m: "\n\n" + "#" * int(m.group(1)) + " " + m.group(2).strip() + "\n\n", markdown)
    return restored.strip("\n")


def title(html: str, found: str) -> str:
    """The page's title: `found` (trafilatura's pick) unless that is an
    admonition's ("Warning" for pg_dump's page), then the `<title>`."""
    if found and found.rstrip(":").lower() not in ADMONITIONS:
        return found
    match = _TITLE.search(html)
    return _SPACE.sub(" ", unescape(match.group(1))).strip() if match else ""


def _text(element) -> str:
    """An element's words: without scripts, styles or comments; a line break
    between two spellings of one option ("-a<br>--data-only") a comma."""
    parts: list[str] = []

    def walk(node) -> None:
        if not isinstance(node.tag, str) or node.tag in _NOT_TEXT:
            return  # a comment, a script: its tail is read by the parent
        parts.append(", " if node.tag == "br" else node.text or "")
        for child in node:
            walk(child)
            parts.append(child.tail or "")

    walk(element)
    return _SPACE.sub(" ", "".join(parts)).strip().strip(",").strip()


def _become(element, tag: str, text: str) -> None:
    """The element, emptied, as `tag` holding `text` (keeps its tail)."""
    tail = element.tail
    for child in list(element):
        element.remove(child)
    element.attrib.clear()
    element.tag, element.text, element.tail = tag, text, tail


def _is_navigation(dt) -> bool:
    for ancestor in dt.iterancestors():
        if _NAVIGATION.search(ancestor.get("class", "") + " " + ancestor.get("id", "")):
            return True
    links = dt.findall(".//a[@href]")
    return bool(links) and sum(len(_text(a)) for a in links) >= len(_text(dt)) * 0.8


def _nesting(dt) -> int:
    """How many definitions (`<dd>`) this term sits inside."""
    return sum(1 for ancestor in dt.iterancestors("dd"))
