"""Synthetic queries for passages. Pure: no Django; the LLM and the embedder
are passed in as callables.

Two sources, and every pair records which one made it:

- "llm": the generator model is asked for one question that the passage
  answers; generation stops at the first "?". Its output is cleaned (first
  line, no lead-in or "Question:" label) and dropped when it is too short or
  too long, not a question (a statement about the passage), copied from the
  passage (a long run of the passage's words), or not supported by the
  passage (few of its content words in the passage and a low embedding
  similarity). A small model writes many such; the filter's counts go into
  the report.
- "ict": the Inverse Cloze Task (Lee, Chang and Toutanova, ACL 2019): one
  sentence of the passage is the query, the passage without that sentence the
  positive. Needs no model, so it works where the LLM is weak.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from retrieval.finetune.data import Passage

LLM, ICT = "llm", "ict"
FEEDBACK = "feedback"  # an asker's question and a passage they found helpful (generation/feedback.py)

QUESTION_SYSTEM = (
    "You write the question a user would type into a search box to find a passage. Reply with one question only."
)
# Two worked examples as earlier turns of the chat: asked for a question
# outright, the small packaged model mostly describes the passage instead
# ("The passage provides..."); shown two, it asks one (13 of 13 on man pages,
# against 5 of 13). They are about other subjects than a corpus is likely to
# have, so that their topic does not leak into the questions.
QUESTION_EXAMPLES = (
    (
        "The Gold card has an annual fee of 95 euros, which is waived in the first year.",
        "Is there a yearly fee for the Gold card?",
    ),
    (
        "Set the TZ environment variable to change the time zone that date uses for its output.",
        "How can I make date show the time in another time zone?",
    ),
)
QUESTION_MAX_TOKENS = 48
QUESTION_STOP = ("?",)  # the question ends there; the rest would be the model talking on
PASSAGE_CHARS = 1200  # the prompt's share of a passage; chunks are about 100 tokens

MIN_QUESTION_WORDS = 4
MAX_QUESTION_WORDS = 32
COPIED_RUN = 7  # a run of this many of the passage's words in a row is copying
MIN_SUPPORT = 0.35  # 0.6 * cosine + 0.4 * share of content words found in the passage

ICT_MIN_WORDS = 5
ICT_MAX_WORDS = 40

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.-]*")
_PREFIX = re.compile(r"^\s*(?:\d+[.)]\s*|[-*]\s*|(?:question|q)\s*\d*\s*[:.-]\s*)+", re.I)
# Sentence ends, and line breaks: lists and option tables have no full stops.
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)|\s*\n\s*")
_LEAD_IN = re.compile(r"^.{0,60}?\b(?:ask|question|is)\s*:\s*[\"“']?", re.I)
_OPENERS = frozenset(
    "what which who whom whose how why when where whether is are was were am can could should would will shall "
    "do does did has have had may might must in on for from to with by under if".split()
)
_QUESTION_WORDS = frozenset(
    "what which who whom whose how why when where does do did is are was were can could should would will "
    "passage text question answer according".split()
)


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str  # the text trained on: the passage (ICT: without the query sentence)
    chunk_id: int
    document_id: int
    method: str  # LLM, ICT or FEEDBACK

    def as_dict(self) -> dict:
        return {
            "query": self.query,
            "positive": self.positive,
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "method": self.method,
        }


@dataclass
class FilterStats:
    """What happened to the LLM's questions: kept, and dropped by reason."""

    asked: int = 0
    kept: int = 0
    not_asked: int = 0  # passages left when the stage's time budget ran out
    dropped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # reason -> a few (question, passage start)

    def note(self, reason: str, question: str, passage: str) -> None:
        self.dropped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append({"question": question, "passage": passage[:160]})

    def as_dict(self) -> dict:
        return {
            "asked": self.asked,
            "kept": self.kept,
            "not_asked": self.not_asked,
            "dropped": dict(sorted(self.dropped.items())),
            "examples": self.examples,
        }


# -- LLM-written questions ----------------------------------------------------
def question_messages(passage_text: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": QUESTION_SYSTEM}]
    for passage, question in QUESTION_EXAMPLES:
        messages += [{"role": "user", "content": f"Passage: {passage}"}, {"role": "assistant", "content": question}]
    text = " ".join(passage_text.split())[:PASSAGE_CHARS]
    return messages + [{"role": "user", "content": f"Passage: {text}"}]


def clean_question(raw: str) -> str:
    """The question in what the model wrote: its first non-empty line, from
    after a lead-in such as 'A user could ask: "' (the small model's habit),
    without list markers, a "Question:" label or quotes; up to the first "?"."""
    for line in raw.strip().splitlines():
        lead_in = _LEAD_IN.search(line)
        if lead_in:
            line = line[lead_in.end() :]
        line = _PREFIX.sub("", line).strip().strip("\"“”'`*").strip()
        if "?" in line:
            line = line[: line.index("?") + 1]
        if line:
            return line
    return ""


def words(text: str) -> list[str]:
    return [w.lower().strip(".-") for w in _WORD.findall(text)]


def longest_common_run(question: str, passage: str) -> int:
    """Length of the longest run of consecutive words the question shares with the passage."""
    q, p = words(question), words(passage)
    if not q or not p:
        return 0
    positions: dict[str, list[int]] = {}
    for i, w in enumerate(p):
        positions.setdefault(w, []).append(i)
    best = 0
    previous: dict[int, int] = {}  # passage index -> run length ending there at the previous question word
    for w in q:
        current = {}
        for j in positions.get(w, ()):
            current[j] = previous.get(j - 1, 0) + 1
            best = max(best, current[j])
        previous = current
    return best


def content_overlap(question: str, passage_tokens: set[str], tokenize: Callable[[list[str]], list[list[str]]]) -> float:
    """Share of the question's content words (stemmed, no stopwords or
    question words) that the passage contains; 0 when it has none."""
    tokens = [t for t in tokenize([question])[0] if t not in _QUESTION_WORDS]
    if not tokens:
        return 0.0
    return sum(t in passage_tokens for t in tokens) / len(tokens)


def rejection(question: str, passage: str, *, cosine: float, overlap: float) -> str | None:
    """Why a generated question is dropped, or None to keep it."""
    tokens = words(question)
    n = len(tokens)
    if n < MIN_QUESTION_WORDS:
        return "too_short"
    if tokens[0] not in _OPENERS:
        return "not_a_question"  # a statement about the passage, not something a user would ask
    if n > MAX_QUESTION_WORDS:
        return "too_long"
    run = longest_common_run(question, passage)
    if run >= COPIED_RUN or (n >= MIN_QUESTION_WORDS and run >= n - 1):
        return "copied"
    if 0.6 * cosine + 0.4 * overlap < MIN_SUPPORT:
        return "unsupported"
    return None


def llm_pairs(
    passages: Sequence[Passage],
    generate: Callable[[list[dict]], str],
    embed: Callable[[list[str]], object],
    tokenize: Callable[[list[str]], list[list[str]]],
    progress: Callable[[int, int], None] | None = None,
    deadline: float | None = None,
) -> tuple[list[Pair], FilterStats]:
    """One question per passage from `generate(messages) -> text`, filtered.
    `embed(texts)` returns normalised vectors (for the support check). No
    question is asked after `deadline` (time.monotonic()): the passages left
    are counted as not asked."""
    import numpy as np

    stats = FilterStats()
    candidates = []
    for done, passage in enumerate(passages, start=1):
        if deadline is not None and time.monotonic() >= deadline:
            stats.not_asked = len(passages) - done + 1
            break
        question = clean_question(generate(question_messages(passage.text)))
        stats.asked += 1
        if progress:
            progress(done, len(passages))
        if not question:
            stats.note("empty", question, passage.text)
            continue
        if not question.endswith("?"):
            question = question.rstrip(".:;,") + "?"
        candidates.append((question, passage))
    if not candidates:
        return [], stats
    vectors = embed([q for q, _ in candidates] + [p.text for _, p in candidates])
    n = len(candidates)
    cosines = np.einsum("ij,ij->i", vectors[:n], vectors[n:])
    pairs = []
    for (question, passage), cosine in zip(candidates, cosines.tolist()):
        overlap = content_overlap(question, set(tokenize([passage.text])[0]), tokenize)
        reason = rejection(question, passage.text, cosine=cosine, overlap=overlap)
        if reason:
            stats.note(reason, question, passage.text)
            continue
        stats.kept += 1
        pairs.append(Pair(question, passage.text, passage.chunk_id, passage.document_id, LLM))
    return pairs, stats


# -- Inverse Cloze Task ---------------------------------------------------------
def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences (and lines) of `text`."""
    spans, start = [], 0
    for match in _SENTENCE.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text) and text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def eligible_sentence(sentence: str) -> bool:
    stripped = sentence.strip()
    if stripped.startswith(("#", "|")):  # a Markdown heading or table row
        return False
    return ICT_MIN_WORDS <= len(words(stripped)) <= ICT_MAX_WORDS


def ict_pair(passage: Passage, seed: int) -> Pair | None:
    """A sentence of the passage (chosen by a seed and the chunk id) as the
    query, the rest of the passage as the positive; None when the passage has
    no sentence of a usable length or nothing would be left."""
    spans = [(s, e) for s, e in sentences(passage.text) if eligible_sentence(passage.text[s:e])]
    if not spans:
        return None
    start, end = random.Random(f"{seed}:{passage.chunk_id}").choice(spans)
    query = " ".join(passage.text[start:end].split())
    rest = remove_span(passage.text, start, end)
    if len(words(rest)) < ICT_MIN_WORDS:
        return None
    return Pair(query, rest, passage.chunk_id, passage.document_id, ICT)


def remove_span(text: str, start: int, end: int) -> str:
    return (text[:start].rstrip() + " " + text[end:].lstrip()).strip()


def ict_pairs(passages: Sequence[Passage], seed: int) -> list[Pair]:
    return [pair for pair in (ict_pair(p, seed) for p in passages) if pair is not None]


def mask_sentences(
    texts: dict[int, str], sentences_to_remove: Sequence[str]
) -> tuple[dict[int, str], dict[str, set[int]]]:
    """For evaluating ICT queries: take each query sentence out of every
    passage that holds it, so that no passage contains its query word for word.
    Returns the masked texts and, per sentence, the passages that held it (its
    relevant passages)."""
    masked = dict(texts)
    holders: dict[str, set[int]] = {}
    normalised = {pk: " ".join(text.split()) for pk, text in texts.items()}
    for sentence in sentences_to_remove:
        holders[sentence] = {pk for pk, text in normalised.items() if sentence in text}
    for sentence, pks in holders.items():
        for pk in pks:
            flat = " ".join(masked[pk].split())
            masked[pk] = flat.replace(sentence, " ").strip()
    return masked, holders
