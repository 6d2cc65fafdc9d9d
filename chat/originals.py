"""An original document as the source viewer shows it, beside the answer that
cites it: a PDF is drawn by PDF.js in the browser (only its format is said
here); an HTML page is the page itself, sanitised by nh3 to an allowlist of
document tags (no script, style, form, frame or image: it can neither run nor
reach out); Markdown and Word documents are rendered as the chat renders
passages; plain text stays text. The viewer then finds the cited sentence in
what is shown and highlights it. No Django here."""

from __future__ import annotations

import html
from pathlib import Path, PurePath

import nh3

# An image is read by OCR into a searchable PDF (ingestion/ocr.py), which is what is shown.
from ingestion.ocr import IMAGE_SUFFIXES

# Bigger originals are offered as files only: sanitising or rendering them
# would hold a web worker for seconds.
MAX_SHOWN_BYTES = 4 * 1024 * 1024

PDF_SUFFIXES = {".pdf"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
TEXT_SUFFIXES = {".txt", ".text"}
DOCX_SUFFIXES = {".docx"}

# Document structure and inline text, nothing that runs, fetches or takes input.
_HTML_TAGS = {
    *("p", "br", "hr", "div", "span", "section", "article", "main", "header", "footer", "nav", "aside"),
    *("h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd", "blockquote", "pre", "code"),
    *("strong", "b", "em", "i", "u", "s", "del", "ins", "sub", "sup", "small", "mark", "abbr", "cite", "q"),
    *("kbd", "samp", "var", "time", "figure", "figcaption", "details", "summary", "caption"),
    *("table", "thead", "tbody", "tfoot", "tr", "th", "td", "colgroup", "col", "a"),
}
_HTML_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
# Their text is not the document's (code, styles, the page's title, embedded graphics).
_DROPPED_WITH_CONTENT = {"script", "style", "title", "noscript", "template", "svg", "math", "iframe", "object"}
_SCHEMES = {"http", "https", "mailto"}


class NotShown(Exception):
    """The original cannot be shown in the viewer (the reason is for the user)."""


def format_of(filename: str) -> str:
    """How the viewer shows a file: pdf, html, markdown, docx, text, or "" (as a file only)."""
    suffix = PurePath(filename).suffix.lower()
    for name, suffixes in (
        ("pdf", PDF_SUFFIXES | IMAGE_SUFFIXES),
        ("html", HTML_SUFFIXES),
        ("markdown", MARKDOWN_SUFFIXES),
        ("docx", DOCX_SUFFIXES),
        ("text", TEXT_SUFFIXES),
    ):
        if suffix in suffixes:
            return name
    return ""


def shown(path: Path, filename: str) -> dict:
    """{"format": ..., "html": ...}: the original as sanitised HTML for the viewer
    (empty for a PDF, which the browser draws from the file itself)."""
    kind = format_of(filename)
    if not kind:
        raise NotShown("This kind of file is not shown here; open it instead.")
    if kind == "pdf":
        return {"format": kind, "html": ""}
    if path.stat().st_size > MAX_SHOWN_BYTES:
        raise NotShown(
            f"The file is larger than {MAX_SHOWN_BYTES // 2**20} MB, too large to show here; open it instead."
        )
    if kind == "docx":
        return {"format": kind, "html": _docx(path)}
    from ingestion.parsing import ParseError, decode_text

    try:
        text = decode_text(path.read_bytes())
    except ParseError as exc:
        raise NotShown(str(exc)) from None
    if kind == "html":
        return {"format": kind, "html": sanitised_page(text)}
    if kind == "markdown":
        from chat.rendering import render

        return {"format": kind, "html": render(text)}
    return {"format": kind, "html": f'<pre class="original-text">{html.escape(text)}</pre>'}


def sanitised_page(page: str) -> str:
    """An HTML page reduced to its document: allowed tags, links to http(s) or
    mail only (a relative link would point into this site), opened in a new tab."""
    return nh3.clean(
        page,
        tags=_HTML_TAGS,
        attributes=_HTML_ATTRIBUTES,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        url_schemes=_SCHEMES,
        attribute_filter=_absolute_links_only,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    if tag == "a" and attribute == "href":
        return value if value.split(":", 1)[0].lower() in _SCHEMES and ":" in value else None
    return value


def _docx(path: Path) -> str:
    """A Word document as the parser reads it (headings and tables as Markdown), rendered."""
    from chat.rendering import render
    from ingestion import docx_reader
    from ingestion.limits import Guard

    try:
        blocks, _ = docx_reader.read_docx(path, Guard())
    except docx_reader.DocxError as exc:
        raise NotShown(str(exc)) from None
    return render("\n\n".join(blocks))
