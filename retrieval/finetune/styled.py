"""Synthetic queries in the style of what people ask (issue #15), beside the
LLM's one-line questions and the Inverse Cloze sentences of queries.py. Pure:
no Django, no model: both kinds are made from the passage itself.

- "keyword": terse search-box queries: what a passage is about (its
  heading's last part, else its document's title) and the rarest content
  words of one of its sentences ("Memory shared buffers kernel?"). Real
  short questions look like this ("default work_mem?").
- "situation": a user's situation in three sentences, as it would be told
  to a support agent: an opener that says nothing about the passage, what
  they ran into (the same rare words, among filler) and a question about the
  passage's subject. Real long questions describe a situation in a
  paragraph; one-line questions and Inverse Cloze sentences never teach the
  embedder to find the few words that matter in one.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from ingestion.chunking import section_name
from retrieval.finetune.data import Passage
from retrieval.finetune.queries import Pair, eligible_sentence, sentences, words

KEYWORD, SITUATION = "keyword", "situation"
STOPWORDS = frozenset(
    "a an the is are was were be been being it its this that these those of to in on at by for with from as "
    "and or but if then than so such can may might must will would should shall do does did not no up which who "
    "what when where how there here also only any all each every per about into over under more most less least "
    "you your we our they their".split()
)
KEYWORD_WORDS = 3  # content words after the subject
MAX_SUBJECT_CHARS = 60
_SUBJECT_NOISE = re.compile(r"\((?:[`\w\s,]*)\)|[`*#\u2026\u2014]|\.\.\.")

# A situation's parts, one of each chosen by a seed: how users open, what
# they ran into (the passage's rarest words), what they ask (its subject).
OPENERS = (
    "We run this in production for a small team and I inherited the setup from a colleague.",
    "I am new to this and the documentation is long, so forgive me if this is obvious.",
    "Since a change last week we see behaviour we did not expect and I am trying to understand why.",
    "A customer asked me about this and I want to give them a correct answer.",
    "We are planning a migration and I am going through what might bite us.",
)
MIDDLES = (
    "Something about {words} does not work the way I thought it would.",
    "I keep running into {words} and I am not sure what decides it.",
    "Nobody on the team could tell me how {words} fits in here.",
    "I read a bit about {words} but could not work out what applies to us.",
)
ASKS = (
    "What does {subject} do in a case like ours, and what should we change?",
    "Is there a limit or a default in {subject} that we should know about?",
    "How does {subject} handle this, and where would I set it?",
    "Can you explain {subject} for this case, and what the usual setting is?",
)
SITUATION_WORDS = 3


# -- keyword queries -------------------------------------------------------------
def subject(passage: Passage) -> str:
    """What the passage is about, as a user would name it: its heading's last
    part without its section number, else its document's title."""
    for source in (passage.heading, passage.title):
        label = _SUBJECT_NOISE.sub(" ", section_name(source or ""))
        label = " ".join(label.split()).strip(" -:.")
        if 0 < len(label) <= MAX_SUBJECT_CHARS:
            return label
    return ""


def content_words(text: str) -> list[str]:
    """Words worth searching for: no stopwords, no numbers, three letters or more."""
    return [w for w in words(text) if len(w) >= 3 and w not in STOPWORDS and not any(c.isdigit() for c in w)]


def document_frequencies(passages: Sequence[Passage]) -> Counter:
    frequencies: Counter = Counter()
    for passage in passages:
        frequencies.update(set(content_words(passage.text)))
    return frequencies


def keyword_pair(passage: Passage, seed: int, frequencies: Counter) -> Pair | None:
    """A terse query for one sentence of the passage (chosen by a seed and the
    chunk id): the passage's subject and the sentence's KEYWORD_WORDS rarest
    content words (by `frequencies` over the corpus), in the sentence's order.
    The positive is the whole passage: a terse query shares its words, as
    real ones do. None when there is no subject or no usable sentence."""
    about = subject(passage)
    spans = [(s, e) for s, e in sentences(passage.text) if eligible_sentence(passage.text[s:e])]
    if not about or not spans:
        return None
    start, end = random.Random(f"{seed}:{passage.chunk_id}:keyword").choice(spans)
    known = set(words(about))
    candidates = list(dict.fromkeys(w for w in content_words(passage.text[start:end]) if w not in known))
    if not candidates:
        return None
    rarest = set(
        sorted(candidates, key=lambda w: (frequencies.get(w, 0), -len(w), candidates.index(w)))[:KEYWORD_WORDS]
    )
    query = f"{about} {' '.join(w for w in candidates if w in rarest)}?"
    return Pair(query, passage.text, passage.chunk_id, passage.document_id, KEYWORD)


def keyword_pairs(passages: Sequence[Passage], seed: int, frequencies: Counter | None = None) -> list[Pair]:
    frequencies = document_frequencies(passages) if frequencies is None else frequencies
    return [pair for pair in (keyword_pair(p, seed, frequencies) for p in passages) if pair is not None]


# -- situations -----------------------------------------------------------------
def situation_pair(passage: Passage, seed: int, frequencies: Counter) -> Pair | None:
    """A user's situation in three sentences (an opener, what they ran into:
    the rarest content words of one sentence of the passage, and a question
    about its subject), with the whole passage as the positive; None where
    keyword_pair would have none. The small packaged generator cannot write
    these: asked with worked examples, it answered as an assistant ("I'm
    sorry for the confusion...") for every passage tried (docs/BENCHMARKS.md)."""
    keyword = keyword_pair(passage, seed, frequencies)
    if keyword is None:
        return None
    about = subject(passage)
    found = keyword.query[len(about) :].strip(" ?").split()[:SITUATION_WORDS]
    listed = found[0] if len(found) == 1 else f"{', '.join(found[:-1])} and {found[-1]}"
    rng = random.Random(f"{seed}:{passage.chunk_id}:situation")
    text = " ".join(
        (
            rng.choice(OPENERS),
            rng.choice(MIDDLES).format(words=listed),
            rng.choice(ASKS).format(subject=about),
        )
    )
    return Pair(text, passage.text, passage.chunk_id, passage.document_id, SITUATION)


def situation_pairs(passages: Sequence[Passage], seed: int, frequencies: Counter | None = None) -> list[Pair]:
    frequencies = document_frequencies(passages) if frequencies is None else frequencies
    return [pair for pair in (situation_pair(p, seed, frequencies) for p in passages) if pair is not None]
