"""Questions the welcome suggests, written from the documents' own section
headings as a person would ask them: the heading's own words (a question
heading as it is, "How to …" as "How do I …?"), its path and numbering
dropped, generic sections (contents, introduction…) left out, and at most
one a document while there are several. Pure: no Django."""

from __future__ import annotations

import re

SUGGESTIONS = 3
_PATH = re.compile(r"\s+[›>]\s+")
_NUMBERING = re.compile(r"^(?:(?:chapter|section|part)\s+)?[\dIVXivx]+(?:[.)]\d+)*[.)]?\s+", re.I)
_GENERIC = {
    *("contents", "table of contents", "introduction", "overview", "summary", "preface", "foreword", "scope"),
    *("purpose", "appendix", "references", "index", "glossary", "about this document", "document history"),
    *("revision history", "definitions", "notes", "background", "conclusion", "abstract", "title"),
}
_YOURS = {"your": "my", "you": "I", "yours": "mine", "yourself": "myself"}


def topic_of(heading: str, title: str) -> str:
    """The section's own name: the last step of its path, without its number."""
    last = _PATH.split(heading.strip())[-1]
    topic = _NUMBERING.sub("", last).strip(" #:.-–—")
    if not topic or topic.casefold() == title.casefold() or topic.casefold() in _GENERIC:
        return ""
    if len(topic) > 80 or not re.search(r"[A-Za-z]{3}", topic):
        return ""
    return topic


def _lower_first(text: str) -> str:
    """The first letter lowered ("Annual fees" → "annual fees"), but not of an acronym or a name ("VPN", "iPhone")."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and (first.isupper() or any(c.isupper() for c in first[1:])):
        return text
    return text[:1].lower() + text[1:]


def question_for(topic: str, title: str) -> str:
    if topic.endswith("?"):
        return topic
    how = re.match(r"how (?:to|do i|can i)\s+(.+)", topic, re.I)
    if how:
        words = [_YOURS.get(w.lower(), w) for w in how.group(1).split()]
        return "How do I " + " ".join(words).rstrip(".") + "?"
    subject = _lower_first(topic)
    if len(title) <= 40:
        return f"What does {title} say about {subject}?"
    return f"What do the documents say about {subject}?"  # a long title reads badly inside a question


def suggested(documents: list[tuple[str, list[str]]]) -> list[str]:
    """Up to SUGGESTIONS questions from (title, headings in order) of each document."""
    topics = []
    for title, headings in documents:
        seen, mine = set(), []
        for heading in headings:
            topic = topic_of(heading, title)
            if topic and topic.casefold() not in seen:
                seen.add(topic.casefold())
                mine.append(question_for(topic, title))
        topics.append(mine)
    questions: list[str] = []
    for round_ in range(SUGGESTIONS):  # one a document first, then a second of each
        for mine in topics:
            if round_ < len(mine) and len(questions) < SUGGESTIONS and mine[round_] not in questions:
                questions.append(mine[round_])
    return questions
