"""Questions to fit the answerability model on (generation/answerability.py),
made from the corpus it serves. Pure: the runner (generation/fitting.py)
searches and scores; these functions decide what a probe asks and what
evidence it is judged on.

Every probe starts from a fact of a passage (a sentence stating a number, as
the generator's fine-tuning finds them: generation/finetune/examples.py) and
a question about it (a keyword one, and the LLM's where it has time):

- ASKED, answerable: the question, on the evidence search finds for it, when
  the fact's passage is among the hits (otherwise retrieval lost it, and the
  gate would be taught to answer from evidence that does not hold the fact).
- REMOVED, unanswerable: the same question on the same hits less the fact's
  passage and every passage that states all of the fact's numbers: the
  corpus lacks the fact, its neighbours (the same topic, other values) stay.
  Most real unanswerable questions are of this kind.
- SWAPPED, unanswerable: the question with its most specific word (the
  rarest in the corpus) replaced by a word the corpus never uses, searched
  afresh: a thing next to what the corpus covers ("the Diamond card's fee"
  where only Gold and Platinum cards exist).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

from generation.claims import numbers

ASKED, REMOVED, SWAPPED = "asked", "removed", "swapped"
MIN_WORD, MAX_WORD = 5, 12  # the length of a word put in: a real word, not a fragment
_PLAIN_WORD = re.compile(r"[a-z]+")


def holds_fact(text: str, values: Sequence[str]) -> bool:
    """Whether `text` states every one of a fact's numbers (normalised)."""
    wanted = numbers(" ".join(values))
    return bool(wanted) and wanted <= numbers(text)


def without_fact(hits: Sequence, chunk_id: int, values: Sequence[str]) -> list:
    """The hits (with .chunk_id and .text) less the fact's passage and those
    stating all of its numbers."""
    return [h for h in hits if h.chunk_id != chunk_id and not holds_fact(h.text, values)]


def candidate_words(vocabulary: Iterable[str]) -> list[str]:
    """Plain lower-case words of MIN_WORD to MAX_WORD letters, in order, from
    a word list (a tokenizer's vocabulary: sub-word pieces and marks left out)."""
    return [w for w in vocabulary if MIN_WORD <= len(w) <= MAX_WORD and _PLAIN_WORD.fullmatch(w)]


def swapped(question: str, weights: dict, words: dict, absent: Sequence[str], rng: random.Random) -> str | None:
    """`question` with the word of its highest-weighted term (`weights`:
    term -> corpus IDF; `words`: term -> the question's own word, as
    evidence.Profile has them) replaced by one of `absent` (words the corpus
    never uses); None when there is nothing to replace or put in."""
    if not weights or not absent:
        return None
    term = max(sorted(weights), key=lambda t: weights[t])
    word = words.get(term, term)
    pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", re.I)
    if not pattern.search(question):
        return None
    replacement = rng.choice(list(absent))
    return pattern.sub(lambda m: replacement.capitalize() if m.group(0)[:1].isupper() else replacement, question, 1)
