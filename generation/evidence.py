"""Evidence selection: the sentences of the retrieved passages that answer a
question, scored, with enough neighbouring text to make sense. Pure.

Every passage is split into sentences (table rows and list items count as
sentences). Each sentence becomes a candidate *unit*: the sentence plus, when
it cannot stand alone (short, opening with "It"/"This"/..., a table row
without its header), the text it leans on. A unit is scored by

    dense     cosine of the question and the unit (with its heading), from
              the retriever's own embedder
    overlap   the question's terms found in the unit, weighted by how rare
              each term is in the corpus (IDF), so "Zelle" counts for more
              than "limit"
    context   the same over the unit's heading, title and whole passage
    type      whether the unit holds what the question asks for: an amount
              for "how much", a duration for "how long", a number for "how
              many", a percentage for "what rate", a stated default for
              "what is the default ..." (of the kind asked for: a duration
              for "how long ... by default"; half as much without it)

and the best units, best first, become the numbered evidence [1], [2], ...
that the model reads and that answers are verified against. Whether any unit
answers the question at all is decided from the best units' scores and
words by generation/gate.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from generation.citations import split_sentences
from generation.claims import has_amount, has_duration, has_number, has_percent, states_default, terms
from ingestion.chunking import section_name

# Words that say what kind of answer is wanted, not what it is about.
QUESTION_WORDS = frozenset(
    "what whats which who whom whose when where why how much many long often soon far is are was were do does did can "
    "could should would will shall may might must i me my we our us you your there please tell know want need get "
    "give let about any some ever".split()
)
# The evidence score: whether a unit answers the question (the "not in the
# documents" gate, generation/gate.py, is fitted on the best units' scores).
WEIGHTS = {"dense": 0.45, "overlap": 0.35, "context": 0.10, "type": 0.10}
TYPE_MISSING_PENALTY = 0.15  # a unit without the kind of value the question asks for
# The order score: which units to quote and cite first. Less weight on the
# question's words (a passage that repeats them is often about them, not the
# answer), more on the value type, and a prior for the retrieval rank of the
# unit's passage. On the labelled sets (bench/evidence_gate.py) the unit
# ranked first holds the fact for 0.788 of answerable demo questions (0.729
# by the evidence score) and 0.444 of PostgreSQL ones (0.374).
ORDER_WEIGHTS = {"dense": 0.30, "overlap": 0.10, "context": 0.10, "type": 0.20}
ORDER_RANK_PRIOR = 0.10  # times 1 / the retrieval rank of the unit's passage
# With a trained reranker (retrieval/reranker.py), its score takes this share
# of each score (chosen on the labelled sets, docs/BENCHMARKS.md).
RERANK_WEIGHTS = {"evidence": 0.0, "order": 0.2}
_ANAPHORA = re.compile(
    r"^(?:it|its|it's|this|these|that|those|they|their|them|such|both|either|neither|here|there|"
    r"the same|also|however|otherwise|in that case|if so)\b",
    re.I,
)
SHORT_UNIT_CHARS = 30  # a shorter sentence ("Yes.", "It does.") is quoted with the one before
HEADING_CHARS = 60  # a line this short without end punctuation is a heading: context, not evidence
# A line break inside a sentence (a PDF's wrapped line, an HTML page's source
# line): the line before ends without punctuation and the next goes on in
# lower case or with a number.
_SOFT_BREAK = re.compile(r"(?<=[^\s.!?:;|])\n(?=[ \t]*[a-z0-9(€$£%])")  # the next line may be indented (HTML source)
_MARKDOWN_HEADING = re.compile(r"^#{1,6}[ \t]+\S.*$", re.M)  # a heading line of a parsed page
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d{1,2}[.)])\s")
_SURFACE = re.compile(r"[a-z0-9]+(?:[._][a-z0-9]+)*")
MAX_LABEL_GAP = 600  # characters between a heading-like line and a sentence quoted with it
MAX_TABLE_GAP = 200  # characters between a table's header row and a row quoted with it


@dataclass(frozen=True)
class Passage:
    """A retrieved passage, as the evidence selection needs it."""

    text: str
    title: str = ""
    heading: str = ""
    document: int | None = None  # the document it is from (the gate asks whether two units share one)


@dataclass(frozen=True)
class Profile:
    """What a question asks about and for."""

    terms: tuple[str, ...]  # content terms, normalised (see claims.terms)
    wants: str  # amount | percent | duration | number | default | any
    words: dict = field(default_factory=dict)  # term -> the question's own word for it (for corpus statistics)
    also: str = ""  # for a default, the kind of value it is ("how long ... by default": duration)


@dataclass
class Unit:
    passage: int  # index into the passages
    start: int  # the sentence's span in the passage text
    end: int
    context_start: int  # the quoted span: the sentence and what it leans on
    context_end: int
    text: str  # passage text[context_start:context_end]
    heading: str
    score: float = 0.0  # the evidence score (WEIGHTS)
    order: float = 0.0  # the order score (ORDER_WEIGHTS)
    features: dict = field(default_factory=dict)
    # How it is quoted to a reader (generation/policy.py): `text` leads with
    # the label or section it leans on, which the model and verification
    # need but a reader finds in the source's label; the quote goes without.
    quote: str = ""  # the sentence and what it leans on, without a lead or a label line ("": `text`)
    label: str = ""  # an in-passage heading or defined term the quote is about ("work_mem (integer)")
    header: str = ""  # a table row's header row, for quoting the row as a small table

    @property
    def sentence_span(self) -> tuple[int, int]:
        return self.start, self.end


# -- the question ---------------------------------------------------------------
_WANTS = [
    (
        "default",
        re.compile(
            r"\bdefaults?\b|\bout of the box\b|\bunless told otherwise\b"
            r"|\bif (?:you|i|we) (?:never|don'?t|do not) (?:set|pass|give|specify|change|choose|pick)\b"
            r"|\bunless (?:you|i|we) (?:set|change|pass|specify|choose|pick)\b"
            r"|\bif (?:it'?s |it is )?(?:never |not )set\b|\bwithout (?:setting|specifying|passing|giving|choosing|-)",
            re.I,
        ),
    ),
    ("percent", re.compile(r"\b(?:rate|interest|apr|percent(?:age)?|yield|%)", re.I)),
    (
        "duration",
        re.compile(
            r"\bhow (?:long|soon|quickly|far (?:ahead|in advance)|many (?:days|weeks|months|years|hours|minutes|seconds))\b"
            r"|\bwithin how\b|\bhow much time\b",
            re.I,
        ),
    ),
    (
        "amount",
        re.compile(
            r"\bhow much\b.*\b(?:cost|costs|pay|charge|fee|fees|price|spend|reimburs\w*|get back|allowance|earn|worth)\b"
            r"|\b(?:cost|costs|price|fee|fees|charge|charged|allowance)\b.*\?|\bhow much (?:is|are|does|do)\b",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"\bhow (?:many|much|big|large|high|low|often)\b|\b(?:maximum|minimum|max|min|limit|number of|size|port)\b",
            re.I,
        ),
    ),
]


def profile(question: str) -> Profile:
    kinds = [name for name, pattern in _WANTS if pattern.search(question)] or ["any"]
    wants, also = kinds[0], (kinds[1] if kinds[0] == "default" and len(kinds) > 1 else "")
    words: dict[str, str] = {}
    for token in _SURFACE.findall(question.lower()):
        if token in QUESTION_WORDS:
            continue
        for term in sorted(terms(token)):
            words.setdefault(term, token)
    return Profile(tuple(words), wants, words, also)


def holds_wanted(text: str, wants: str) -> bool | None:
    """Whether `text` has a value of the wanted kind (None: nothing particular is wanted)."""
    if wants == "any":
        return None
    return {
        "amount": has_amount,
        "percent": has_percent,
        "duration": has_duration,
        "number": has_number,
        "default": states_default,
    }[wants](text)


# -- units ------------------------------------------------------------------------
def completed(text: str, following: str) -> str:
    """The passage with its last sentence completed from the text that
    follows it, when a chunk boundary cut that sentence."""
    if not following or not text.strip() or text.rstrip().endswith((".", "!", "?", ":", "|")):
        return text
    spans = split_sentences(following)
    if not spans:
        return text
    return text + (" " if not text[-1].isspace() else "") + following[: spans[0][1]].lstrip()


def units(passages: Sequence[Passage]) -> list[Unit]:
    """Every sentence of every passage, with the text it leans on."""
    found = []
    for index, passage in enumerate(passages):
        text = passage.text
        spans = split_sentences(_SOFT_BREAK.sub(" ", text))  # same length: spans index `text` too
        label = None  # the last heading-like line: a section title, a defined term ("- `work_mem` (integer)")
        headings = [(m.start(), m.end()) for m in _MARKDOWN_HEADING.finditer(text)]
        # Before any heading line of its own, a passage's sentences are in the
        # section its heading path ends with ("temp_buffers (integer)"): a
        # sentence that shares no word with it is quoted after it.
        # Leads go without section numbers: given "8.1.2. Arbitrary Precision
        # Numbers … " as evidence, the model answered "8.1.2".
        section = section_name(passage.heading)
        for position, (start, end) in enumerate(spans):
            sentence = text[start:end]
            context_start, context_end, lead, label_name, header_row = start, end, "", "", ""
            list_item = False
            heading = next((h for h in headings if h[0] <= start < h[1]), None)
            if heading is not None:  # "#### work_mem (integer)", "### F.3.1. Configuration Parameters"
                label = heading
                continue  # however long, and whatever it ends with
            if (
                len(sentence) < HEADING_CHARS
                and not sentence.rstrip().endswith((".", "!", "?", "|"))
                # A list item stating a value ("- Mobile app: 10,000 euros per day") is a fact,
                # not a heading; one that names ("- `work_mem` (`integer`)") is a term it defines.
                and not (_LIST_ITEM.match(sentence) and any(ch.isdigit() for ch in sentence))
            ):
                label = (start, end)
                continue  # a heading line: context for what follows, not evidence
            if sentence.rstrip().endswith("?"):
                continue  # a question (an FAQ's) states nothing
            if position == 0 and start < 3 and sentence[:1].islower():
                continue  # the end of a sentence the chunk boundary cut: its start is in another passage
            if sentence.lstrip().startswith("|"):  # a table row: lean on the table's header row
                header = _table_header(spans, position, text)
                if header is not None and header[0] < start:
                    header_row = text[header[0] : header[1]].strip()
                    if start - header[1] <= MAX_TABLE_GAP:
                        context_start = header[0]  # header, separator (and a row or two), this row
                    else:
                        lead = text[header[0] : header[1]] + "\n…\n"
            elif _LIST_ITEM.match(sentence) and (lead_in := _lead_in(spans, position, text)) is not None:
                list_item = True
                label_name = text[lead_in[0] : lead_in[1]].strip().rstrip(":").strip()
                if start - lead_in[1] <= MAX_TABLE_GAP:
                    context_start = lead_in[0]  # "Limits by channel:", the items before, this item
                else:
                    lead = text[lead_in[0] : lead_in[1]] + " … "
            elif position and (len(sentence) < SHORT_UNIT_CHARS or _ANAPHORA.match(sentence)):
                context_start = spans[position - 1][0]
            if sentence.rstrip().endswith(":") and position + 1 < len(spans):
                context_end = spans[position + 1][1]
            # A table row is quoted under its header alone, a list item after its lead-in alone.
            quote_start = start if header_row else context_start
            if list_item:
                quote_start = start + _LIST_ITEM.match(sentence).end()  # without its bullet
            if not lead and label is not None and 0 <= context_start - label[1] <= MAX_LABEL_GAP:
                # "The default is 4MB." says nothing without the term it defines;
                # a reader sees it named before the quote (policy.quote_block).
                label_name = section_name(text[label[0] : label[1]].lstrip("#- ")).strip()
                if not text[label[1] : context_start].strip() and not text.startswith("#", label[0]):
                    context_start = label[0]
                else:
                    lead = label_name + " … "
            elif not lead and label is None and section and not terms(section) & terms(text[context_start:context_end]):
                lead = section + " … "  # "The default is eight megabytes." names nothing it is about
                label_name = section
            found.append(
                Unit(
                    index,
                    start,
                    end,
                    context_start,
                    context_end,
                    lead + text[context_start:context_end],
                    passage.heading,
                    quote=text[quote_start:context_end],
                    label=label_name,
                    header=header_row,
                )
            )
    return found


def _lead_in(spans, position, text):
    """The sentence ending in ":" that opens the list this item belongs to."""
    for back in range(position - 1, -1, -1):
        line = text[spans[back][0] : spans[back][1]]
        if line.rstrip().endswith(":"):
            return spans[back]
        if not _LIST_ITEM.match(line):
            return None
    return None


def _table_header(spans, position, text):
    """The first row of the table this row belongs to (the rows above it that start with "|")."""
    first = None
    for back in range(position - 1, -1, -1):
        row = text[spans[back][0] : spans[back][1]].lstrip()
        if not row.startswith("|"):
            break
        first = spans[back]
    return first


# -- scoring ----------------------------------------------------------------------
def idf_weights(question: Profile, counts: dict | None, total: int) -> dict:
    """BM25's IDF of each of the question's terms over the corpus (1.0 each
    when no statistics are given); `counts` holds, for each of the question's
    own words (Profile.words), the passages that contain it."""
    if counts is None or total <= 0:
        return {t: 1.0 for t in question.terms}
    weights = {}
    for term in question.terms:
        count = counts.get(question.words.get(term, term), 0)
        weights[term] = math.log(1 + (total - count + 0.5) / (count + 0.5))
    return weights


def salient(weights: dict, share: float = 0.5) -> frozenset:
    """The question's rarest terms: those weighing at least `share` of the heaviest."""
    top = max(weights.values(), default=0.0)
    return frozenset(t for t, w in weights.items() if top and w >= share * top)


def coverage(weights: dict, text_terms: set) -> float:
    total = sum(weights.values())
    if not total:
        return 0.0
    return sum(w for t, w in weights.items() if t in text_terms) / total


def score(
    question: Profile, found: list[Unit], passages: Sequence[Passage], weights: dict, cosine=None, rerank=None
) -> list[Unit]:
    """Score units in place; returns them best first. `cosine[i]` is the
    question's similarity to unit i; without it only the words and the type
    count (the cheap first pass that picks the units worth embedding).
    `rerank[i]`, the trained reranker's score of unit i (0..1), when the
    serving retriever has one: it then takes RERANK_WEIGHTS' share of both
    scores."""
    if not found:
        return []
    cosine = np.zeros(len(found), np.float32) if cosine is None else np.clip(np.asarray(cosine, np.float32), 0.0, 1.0)
    reranked = None if rerank is None else np.clip(np.asarray(rerank, np.float32), 0.0, 1.0)
    passage_terms = {}
    for i, unit in enumerate(found):
        if unit.passage not in passage_terms:
            p = passages[unit.passage]
            passage_terms[unit.passage] = terms(" ".join((p.title, p.heading, p.text)))
        unit_terms = terms(unit.text)
        wanted = holds_wanted(unit.text, question.wants)
        if wanted and question.also and not holds_wanted(unit.text, question.also):
            wanted = None  # a default, but not of the kind asked for ("the default mode" for "how many seconds")
        type_score = 0.5 if wanted is None else (1.0 if wanted else 0.0)
        features = {
            "dense": float(cosine[i]),
            "overlap": coverage(weights, unit_terms),
            "context": coverage(weights, unit_terms | passage_terms[unit.passage]),
            "type": type_score,
        }
        value = sum(WEIGHTS[name] * features[name] for name in WEIGHTS)
        order = sum(ORDER_WEIGHTS[name] * features[name] for name in ORDER_WEIGHTS) + ORDER_RANK_PRIOR / (
            unit.passage + 1
        )
        if reranked is not None:
            features["rerank"] = float(reranked[i])
            value = mixed(value, features["rerank"], RERANK_WEIGHTS["evidence"])
            order = mixed(order, features["rerank"], RERANK_WEIGHTS["order"])
        if wanted is False:
            value -= TYPE_MISSING_PENALTY
            order -= TYPE_MISSING_PENALTY
        unit.features = {name: round(v, 4) for name, v in features.items()}
        unit.score = round(value, 4)
        unit.order = round(order, 4)
    return sorted(found, key=lambda u: (-u.score, u.passage, u.start))


def mixed(score: float, rerank: float, share: float) -> float:
    """A score with `share` of it given to the reranker's."""
    return (1 - share) * score + share * rerank


def ordered(units: list[Unit]) -> list[Unit]:
    """The units best first by the order score (score() sorts by the evidence score)."""
    return sorted(units, key=lambda u: (-u.order, u.passage, u.start))


def embedding_text(unit: Unit) -> str:
    return f"{unit.heading}: {unit.text}" if unit.heading else unit.text


def select(ranked: list[Unit], *, limit: int, max_chars: int, by_sentence: bool = False) -> list[Unit]:
    """The best units that do not repeat one another: a unit whose quoted span
    overlaps one already taken is skipped, and so is one whose text is the
    same. `by_sentence`: only the sentences may not overlap (the items of a
    list lean on the same lead-in; a list answer wants them all)."""
    taken: list[Unit] = []
    used = 0
    seen_texts = set()
    for unit in ranked:
        if len(taken) >= limit:
            break
        key = " ".join(unit.text.split()).casefold()
        if key in seen_texts or any(u.passage == unit.passage and _overlap(u, unit, by_sentence) for u in taken):
            continue
        if used + len(unit.text) > max_chars and taken:
            continue  # too long for what is left of the budget; a shorter one may fit
        taken.append(unit)
        seen_texts.add(key)
        used += len(unit.text)
    return taken


def _overlap(a: Unit, b: Unit, by_sentence: bool) -> bool:
    if by_sentence:
        return a.start < b.end and b.start < a.end
    return a.context_start < b.context_end and b.context_start < a.context_end
