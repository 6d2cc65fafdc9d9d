"""A conversation to take away: the branch on show, each answer with its
sources and the sentence each was cited for, as Markdown (to read or paste)
or JSON (to process). Built from what the chat shows (chat/services.py's
message dictionaries), so an answer withheld in the chat is withheld here."""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone

KIND_LABELS = {
    "generated": "Checked against the sources",
    "quoted": "Quoted from the documents",
    "not_found": "Not in the documents",
    "refused": "Withheld by the safety check",
    "stopped": "Stopped — the answer is incomplete",
    "broken": "Interrupted — the answer is incomplete",
}


def filename(conversation, form: str) -> str:
    """A file name from the title: letters, digits and dashes only (it goes in a header)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", conversation.title or "conversation").strip("-").lower()[:60]
    return f"{slug or 'conversation'}-{conversation.pk}.{form}"


def cited_sentence(source: dict) -> str:
    spans = source.get("highlight") or []
    quote = source.get("quote") or ""
    text = " ".join(quote[start:end] for start, end in spans) if spans else quote
    return " ".join(text.split())


def _when(iso: str) -> str:
    moment = timezone.localtime(datetime.fromisoformat(iso))
    return f"{moment.day} {moment:%b %Y, %H:%M}"


def _source(c: dict) -> dict:
    return {
        "number": c["number"],
        "title": c.get("title", ""),
        "filename": c.get("filename", ""),
        "page": c.get("page"),
        "withdrawn": c.get("withdrawn", False),
        "sentence": "" if c.get("withdrawn") else cited_sentence(c),
    }


def as_json(conversation, shown: list[dict]) -> dict:
    return {
        "title": str(conversation),
        "created": conversation.created.isoformat(),
        "exported": timezone.now().isoformat(),
        "messages": [
            {
                "role": m["role"],
                "created": m["created"],
                "content": m["content"],
                **(
                    {
                        "kind": m["kind"],
                        "notice": m["notice"],
                        "sources": [_source(c) for c in m["citations"]],
                        "versions": len(m["versions"]),
                    }
                    if m["role"] == "assistant"
                    else {}
                ),
            }
            for m in shown
        ],
    }


def as_markdown(conversation, shown: list[dict]) -> str:
    lines = [f"# {_line(str(conversation))}", "", f"_Exported {_when(timezone.now().isoformat())}._", ""]
    for m in shown:
        if m["role"] == "user":
            lines += [f"## Question · {_when(m['created'])}", "", *_quoted(m["content"]), ""]
            continue
        label = KIND_LABELS.get(m["kind"], "")
        lines += [f"### Answer · {_when(m['created'])}" + (f" · {label}" if label else ""), ""]
        if m["notice"]:
            lines += [f"_{_line(m['notice'])}_", ""]
        lines += [m["content"] or "_(no text)_", ""]
        if m["citations"]:
            lines += ["Sources:", ""]
            for c in m["citations"]:
                s = _source(c)
                where = s["filename"] + (f", page {s['page']}" if s["page"] else "")
                said = "withdrawn: the document was deleted" if s["withdrawn"] else f"“{s['sentence']}”"
                lines.append(f"{s['number']}. {_line(s['title'] or s['filename'])} ({where}): {said}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _line(text: str) -> str:
    return " ".join(text.split())


def _quoted(text: str) -> list[str]:
    """A question as a Markdown quote (what the user typed is not Markdown of ours)."""
    return ["> " + line if line else ">" for line in text.splitlines()] or [">"]
