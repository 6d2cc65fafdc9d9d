"""Sentences and [n] markers: the text handling that evidence selection,
verification and the answer policy share. Pure.

Answers cite evidence as [1], [2]; markers the model writes are read here
(and checked in generation/policy.py, never trusted as written).
"""

from __future__ import annotations

import re

MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# A sentence ends at . ! ? (then closing quotes/brackets) before white space or the end,
# or at a line break; "1.9%" and "e.g.x" stay whole.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)|\n")
_LIST_MARKER = re.compile(r"\d{1,3}[.)]")
STOPWORDS = frozenset(
    "a an and are as at be but by can could do does for from had has have he her his how i if in into is it its "
    "may me might more most my no not of on or our she should so such than that the their them then there these "
    "they this those to too was we were what when where which who whom why will with would you your yes".split()
)


def split_sentences(text: str) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    bounds = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for bound in bounds:
        start, end = cursor, bound
        cursor = bound
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start and any(ch.isalnum() for ch in text[start:end]):
            if spans and _LIST_MARKER.fullmatch(text[spans[-1][0] : spans[-1][1]]):
                start = spans.pop()[0]  # "1." opens a list item; it is not a sentence
            spans.append((start, end))
    return spans


def strip_markers(text: str) -> tuple[str, list[tuple[int, list[int]]]]:
    """Text without [n] markers, and (position in the new text, numbers) per marker."""
    out, found, last = [], [], 0
    length = 0
    for match in MARKER.finditer(text):
        out.append(text[last : match.start()])
        length += match.start() - last
        found.append((length, [int(n) for n in re.findall(r"\d+", match.group(1))]))
        last = match.end()
    out.append(text[last:])
    return "".join(out), found
