"""Attribute answer sentences to the passages that support them. Pure.

The small default model rarely writes [n] markers, and places wrongly those
it writes; so every sentence is scored against every passage (embedding cosine
blended with lexical overlap) and cited to the best one above a threshold.
Markers the model did write are kept only when that check confirms them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MARKER = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# A sentence ends at . ! ? (then closing quotes/brackets) before white space or the end,
# or at a line break; "1.9%" and "e.g.x" stay whole.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)|\n")
_LIST_MARKER = re.compile(r"\d{1,3}[.)]")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
STOPWORDS = frozenset(
    "a an and are as at be but by can could do does for from had has have he her his how i if in into is it its "
    "may me might more most my no not of on or our she should so such than that the their them then there these "
    "they this those to too was we were what when where which who whom why will with would you your yes".split()
)
COSINE_WEIGHT = 0.6


@dataclass
class SentenceSupport:
    start: int
    end: int
    text: str
    passage: int | None  # 0-based index of the supporting passage, None if unsupported
    score: float
    claimed: list[int] = field(default_factory=list)  # 1-based markers the model wrote


@dataclass
class Attribution:
    answer: str  # the answer with our verified [n] markers, numbered by first use
    sentences: list[SentenceSupport]
    cited: list[int]  # 0-based passage indexes, in order of their display number
    spans: dict[int, list[tuple[int, int]]]  # passage index -> spans of `answer`


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
            if spans and _LIST_MARKER.fullmatch(text[spans[-1][0]:spans[-1][1]]):
                start = spans.pop()[0]  # "1." opens a list item; it is not a sentence
            spans.append((start, end))
    return spans


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def lexical_support(sentence: str, passage: str) -> float:
    """Share of the sentence's content words found in the passage."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & content_words(passage)) / len(words)


def support_matrix(sentences: Sequence[str], passages: Sequence[str], sentence_vectors, passage_vectors) -> np.ndarray:
    cosine = np.asarray(sentence_vectors, np.float32) @ np.asarray(passage_vectors, np.float32).T
    lexical = np.array([[lexical_support(s, p) for p in passages] for s in sentences], np.float32).reshape(cosine.shape)
    return COSINE_WEIGHT * np.clip(cosine, 0.0, 1.0) + (1 - COSINE_WEIGHT) * lexical


def strip_markers(text: str) -> tuple[str, list[tuple[int, list[int]]]]:
    """Text without [n] markers, and (position in the new text, numbers) per marker."""
    out, found, last = [], [], 0
    length = 0
    for match in MARKER.finditer(text):
        out.append(text[last:match.start()])
        length += match.start() - last
        found.append((length, [int(n) for n in re.findall(r"\d+", match.group(1))]))
        last = match.end()
    out.append(text[last:])
    return "".join(out), found


def attribute(answer: str, passages: Sequence[str], embed, threshold: float, passage_vectors=None) -> Attribution:
    """`embed(texts) -> unit vectors` is the retriever's embedder; the passages'
    own vectors may be given (from the index) so that only the answer is embedded."""
    clean, markers = strip_markers(answer.strip())
    lead = len(clean) - len(clean.lstrip())  # "[1] Text" leaves a leading space
    clean = clean.strip()
    markers = [(max(0, pos - lead), numbers) for pos, numbers in markers]
    spans = split_sentences(clean)
    texts = [clean[s:e] for s, e in spans]
    if not spans or not passages:
        return Attribution(clean, [SentenceSupport(s, e, clean[s:e], None, 0.0) for s, e in spans], [], {})
    if passage_vectors is None:
        vectors = embed(texts + list(passages))
        sentence_vectors, passage_vectors = vectors[: len(texts)], vectors[len(texts):]
    else:
        sentence_vectors = embed(texts)
    scores = support_matrix(texts, passages, sentence_vectors, passage_vectors)
    supports = []
    for row, (start, end) in enumerate(spans):
        claimed = [n for pos, numbers in markers if start <= pos <= end + 1 for n in numbers]
        valid = [n - 1 for n in claimed if 1 <= n <= len(passages)]  # out-of-range numbers dropped
        # A passage supports a sentence only if it scores above the threshold and
        # states the sentence's numbers in the passage sentence that matches it best.
        candidates = [p for p in range(len(passages)) if scores[row, p] >= threshold and numbers_agree(texts[row], passages[p])]
        verified = [p for p in valid if p in candidates]
        pool = verified or candidates
        choice = max(pool, key=lambda p: scores[row, p]) if pool else int(np.argmax(scores[row]))
        supported = choice in candidates
        supports.append(SentenceSupport(start, end, texts[row], choice if supported else None,
                                        round(float(scores[row, choice]), 4), claimed))
    return _render(clean, supports)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_agree(sentence: str, passage: str) -> bool:
    """True when every number in `sentence` appears in the passage sentence
    that shares most of its other words (so "the Gold card costs 250 euros" is
    not supported by a passage where 250 is the Platinum card's fee)."""
    numbers = set(_NUMBER.findall(sentence))
    if not numbers:
        return True
    words = {w for w in content_words(sentence) if not _NUMBER.fullmatch(w)}
    candidates = [passage[a:b] for a, b in split_sentences(passage)] or [passage]
    overlap = [len(words & content_words(text)) for text in candidates]
    most = max(overlap)
    return any(numbers <= set(_NUMBER.findall(text)) for text, shared in zip(candidates, overlap) if shared == most)


def _render(clean: str, supports: list[SentenceSupport]) -> Attribution:
    """Insert display markers before each supported sentence's final punctuation."""
    numbers: dict[int, int] = {}
    pieces, cursor = [], 0
    spans: dict[int, list[tuple[int, int]]] = {}
    out_len = 0
    rendered = []
    for sup in supports:
        pieces.append(clean[cursor:sup.start])
        out_len += sup.start - cursor
        body = sup.text
        start_out = out_len
        if sup.passage is not None:
            number = numbers.setdefault(sup.passage, len(numbers) + 1)
            stripped = body.rstrip(".!?\"')]")
            body = f"{stripped} [{number}]{body[len(stripped):]}"
        pieces.append(body)
        out_len += len(body)
        if sup.passage is not None:
            spans.setdefault(sup.passage, []).append((start_out, out_len))
        rendered.append(SentenceSupport(start_out, out_len, body, sup.passage, sup.score, sup.claimed))
        cursor = sup.end
    pieces.append(clean[cursor:])
    cited = sorted(numbers, key=numbers.get)
    return Attribution("".join(pieces), rendered, cited, spans)
