"""The checkable facts of a sentence, and the strict check of an answer
sentence against the evidence it is attributed to. Pure.

A sentence's claims are its numbers (amounts, percentages, durations, dates,
counts, written in digits or words), its named things (capitalised terms such
as products, plans and places, and identifiers such as `max_connections`),
whether it is negated ("no", "not", "never", "without", ...), and its other
content terms. An answer sentence verifies against an evidence text when

    - every number it states is in the evidence;
    - every named thing it states is in the evidence (or its heading/title);
    - it is negated exactly when the evidence sentence it matches best is
      ("no annual fee" against "an annual fee of 250 euros" fails);
    - few of its other content terms are neither in the evidence nor in the
      question (a paraphrase may add a word or two; an invented fact fails);
    - where the evidence's heading or title names identifiers (a setting's
      section: "hash_mem_multiplier (floating point)"), a sentence naming
      identifiers names one of them: a value stated for `work_mem` is not
      backed by another setting's section that merely mentions `work_mem`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generation.citations import STOPWORDS, split_sentences
from generation.identifiers import named

NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "fifteen": "15",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "ninety": "90",
    "hundred": "100",
    "thousand": "1000",
    "single": "1",
    "once": "1",
    "twice": "2",
    "half": "0.5",
}
_TOKEN = re.compile(r"[a-z0-9]+(?:[._][a-z0-9]+)*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])|(?<![\w.])\d+(?:[.,]\d+)*(?=[a-zA-Z%€$£])")
_NUMBER_WORD = re.compile(
    r"\b(" + "|".join(n for n in NUMBER_WORDS if n not in ("single", "once", "half")) + r")\b", re.I
)
_UNIT = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|ms|s|min|h|d)\b"
_DURATION = re.compile(
    r"(?:\d+(?:[.,]\d+)?|\b(?:"
    + "|".join(NUMBER_WORDS)
    + r"))[\s-]*(?:\w+[\s-]+)?"
    + _UNIT
    + r"|\b(?:next|same|following)\s+(?:working\s+|business\s+)?day\b|\bimmediately\b|\binstantly\b",
    re.I,
)
_AMOUNT = re.compile(r"(?:€|\$|£|¥)\s?\d|\d[\d,.]*\s?(?:euros?|eur|usd|dollars?|pounds?|gbp|cents?)\b", re.I)
_PERCENT = re.compile(r"\d[\d.,]*\s?(?:%|percent\b|per\s?cent\b)", re.I)
_DEFAULT = re.compile(r"\bdefault(?:s|ed)?\b", re.I)
_NEGATION = re.compile(r"\b(?:no|not|never|none|nothing|without|cannot|neither|nor|free of charge)\b|n't\b", re.I)
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*\b")
_IDENTIFIER = re.compile(r"\b[A-Za-z]+(?:_[A-Za-z0-9]+)+\b|\b[A-Za-z]+\d+[A-Za-z0-9]*\b")
_ABSTAINS = re.compile(
    r"\b(?:do(?:es)?\s+not|don't|doesn't|did\s+not)\s+(?:say|mention|contain|specify|provide|state|include|give|cover)"
    r"|\bnot\s+(?:mentioned|specified|stated|provided|given|covered)\b|\bno\s+information\b|\bcannot\s+(?:find|answer)"
    r"|\bcan't\s+(?:find|answer)|\bnot\s+in\s+the\s+(?:documents|passages|evidence)",
    re.I,
)
# Words an answer may add without stating a fact of its own.
GENERIC = frozenset(
    "answer question document documents passage passages evidence according state states stated say says said mention "
    "mentioned cost costs charge charged pay paid include includes included offer offers offered provide provides "
    "provided allow allows allowed need needs needed require requires required apply applies available also only "
    "per each every yes based following follow use used using get gets make makes made take takes taken".split()
)
# Words that measure a value without saying what it is of ("16 bytes", "3 days").
MEASURES = frozenset(
    "byte bytes kb mb gb tb kilobyte kilobytes megabyte megabytes gigabyte gigabytes euro euros eur dollar dollars "
    "pound pounds cent cents percent second seconds minute minutes hour hours day days week weeks month months "
    "year years ms min".split()
)
_VALUE_TERM = re.compile(r"\d[\d.,+]*[a-z]*")
NOVEL_SHARE = 0.34  # the most of an answer sentence's content terms that may be in neither evidence nor question


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> set[str]:
    """Content terms: lower case, stemmed, stopwords out, number words as
    digits; an identifier (`max_connections`, `pg_dump`) counts whole and by its parts."""
    found = set()
    for token in _TOKEN.findall(text.lower().replace("'s ", " ")):
        pieces = [token] + (
            re.split(r"[._]", token) if ("_" in token or "." in token) and not _NUMBER.fullmatch(token) else []
        )
        for piece in pieces:
            if not piece or piece in STOPWORDS or (len(piece) == 1 and not piece.isdigit()):
                continue
            found.add(NUMBER_WORDS.get(piece, _stem(piece)))
    return found


_MEASURE_TERMS = frozenset().union(*(terms(word) for word in MEASURES | {"answer", "question"}))


def numbers(text: str) -> set[str]:
    """Numbers in digits or words, normalised: "1,500" and "1500" alike, "five" as "5"."""
    found = {_normal_number(n) for n in _NUMBER.findall(text)}
    found |= {NUMBER_WORDS[w.lower()] for w in _NUMBER_WORD.findall(text)}
    return found


def values(text: str) -> list[str]:
    """The numbers written in digits, as the text writes them ("1,500", "4MB"'s "4")."""
    return [match.group(0) for match in _NUMBER.finditer(text)]


def _normal_number(text: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    text = text.replace(",", ".")
    if "." in text:
        text = text.rstrip("0").rstrip(".") or "0"
    return text.lstrip("0") or "0"


# A whole value of a kind, as the text writes it ("1,500 euros", "€95", "2.5 %", "five working days").
_VALUE_OF = {
    "amount": re.compile(
        r"(?:€|\$|£|¥)\s?\d+(?:[.,]\d+)*|\d+(?:[.,]\d+)*\s?(?:euros?|eur|usd|dollars?|pounds?|gbp|cents?)\b", re.I
    ),
    "percent": re.compile(r"\d+(?:[.,]\d+)*\s?(?:%|percent\b|per\s?cent\b)", re.I),
    "duration": _DURATION,
}


def stated_values(text: str, kind: str) -> list[str]:
    """The distinct values of `kind` (amount, percent, duration) the text
    states, in order, as written; [] for another kind."""
    pattern = _VALUE_OF.get(kind)
    if pattern is None:
        return []
    return list(dict.fromkeys(" ".join(m.group(0).split()) for m in pattern.finditer(text)))


def has_number(text: str) -> bool:
    return bool(numbers(text))


def has_amount(text: str) -> bool:
    return bool(_AMOUNT.search(text))


def has_percent(text: str) -> bool:
    return bool(_PERCENT.search(text))


def has_duration(text: str) -> bool:
    return bool(_DURATION.search(text))


def states_default(text: str) -> bool:
    """The text gives a default ("The default is 4MB", "It defaults to on", "by default")."""
    return bool(_DEFAULT.search(text))


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def abstains(text: str) -> bool:
    """The text says the documents do not answer ("The documents do not say")."""
    return bool(_ABSTAINS.search(text))


def names(text: str) -> set[str]:
    """Named things, lower case: capitalised words that are not merely a
    sentence's first word (unless they are no common word either), and identifiers."""
    found = set()
    sentence_starts = {start for start, _ in split_sentences(text)}
    for match in _CAPITALISED.finditer(text):
        word = match.group(0)
        lower = word.lower()
        if lower in STOPWORDS or lower in GENERIC or lower in NUMBER_WORDS:
            continue
        if match.start() in sentence_starts and not (word.isupper() and len(word) > 1):
            continue  # "Gold card fees ..." at a sentence start proves nothing by its capital
        found.add(_stem(lower))
    found |= {m.group(0).lower() for m in _IDENTIFIER.finditer(text)}
    return found


@dataclass(frozen=True)
class Check:
    ok: bool
    reasons: tuple[str, ...] = ()


def verify(
    sentence: str, evidence: str, question: str = "", context: str = "", salient=frozenset(), title: str = ""
) -> Check:
    """Does `evidence` (with `context`: its heading and title) state what
    `sentence` claims? `salient` are the question's rarest terms: an answer
    that uses one asserts it, so the evidence must hold it too ("the Diamond
    card's fee is 95 euros" against the Gold card's fee fails). `title`, the
    evidence's document title, backs names but is no subject of its own: a
    sentence that names the document where the evidence does not ("The
    Mortgage Guide is waived on ...") put it in place of what the evidence
    says it of."""
    reasons = []
    if sentence.rstrip().endswith("?"):
        return Check(False, ("a question, not an answer",))
    backing = f"{context}\n{evidence}"
    missing_numbers = numbers(sentence) - numbers(evidence)
    if missing_numbers:
        reasons.append("numbers not in the evidence: " + ", ".join(sorted(missing_numbers)))
    backing_terms = terms(backing)
    missing_names = {n for n in names(sentence) if not (terms(n) <= backing_terms)}
    if missing_names:
        reasons.append("names not in the evidence: " + ", ".join(sorted(missing_names)))
    closest = _closest_sentence(sentence, evidence)
    if negated(sentence) != negated(closest):
        reasons.append(
            "negation differs from the evidence" if negated(sentence) else "the evidence is negated, the answer is not"
        )
    own = {t for t in terms(sentence) if t not in GENERIC}
    asked = terms(question)
    novel = own - backing_terms - asked
    if own and len(novel) / len(own) > NOVEL_SHARE:
        reasons.append("terms not in the evidence: " + ", ".join(sorted(novel)))
    unbacked = (own & set(salient)) - backing_terms
    if unbacked:
        reasons.append("the evidence does not mention: " + ", ".join(sorted(unbacked)))
    if not (own & terms(evidence)) - asked:
        reasons.append("states nothing the evidence says beyond the question")
    if numbers(sentence) and not {t for t in own if not _VALUE_TERM.fullmatch(t)} - _MEASURE_TERMS:
        # "The answer is: 3": a value the evidence holds, of nothing in particular.
        reasons.append("a bare value: the sentence does not say what it is of")
    if _names_the_document(sentence, evidence, title):
        reasons.append(f"names the document ({title}), not what the evidence describes")
    subjects = named(context)
    if subjects and (claimed := named(sentence)) and not set(claimed) & set(subjects):
        # "The default work_mem is 2.0" against hash_mem_multiplier's section, which mentions work_mem.
        reasons.append(f"the evidence is about {', '.join(subjects)}, not {', '.join(claimed)}")
    return Check(not reasons, tuple(reasons))


def _phrase(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


def _names_the_document(sentence: str, evidence: str, title: str) -> bool:
    phrase = _phrase(title)
    return len(phrase.split()) >= 2 and phrase in _phrase(sentence) and phrase not in _phrase(evidence)


def _closest_sentence(sentence: str, evidence: str) -> str:
    words = terms(sentence)
    candidates = [evidence[a:b] for a, b in split_sentences(evidence)] or [evidence]
    return max(candidates, key=lambda text: len(words & terms(text)))
