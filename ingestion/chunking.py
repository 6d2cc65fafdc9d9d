"""Split page text into passages that fit the embedder's token budget. Pure.

Structure first: paragraphs, then sentences, then words (never mid-word, unless
a word alone is over the budget). A passage is capped in characters as well as
tokens: a run without spaces is one "word" to the tokenizer (5 MB of "G" is a
single [UNK]), and would otherwise become one passage of any size.
Passages stay within one page so each can cite its page; consecutive passages
overlap by up to `overlap` tokens of whole sentences. A Markdown heading starts
a new passage. A Markdown table stays whole when it fits; one that must be
split repeats its header rows at the top of every piece. Offsets point into
the page's text: `page.text[start:end] == chunk.text`, except that a table
piece's text is its repeated header followed by `page.text[start:end]`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ingestion.limits import Guard
from ingestion.parsing import Page

TokenCounter = Callable[[str], int]
# Spans are counted in batches of this many (one tokenizer call each).
COUNT_BATCH = 1024

_PARAGRAPH = re.compile(r"\n\s*\n")
# White space after . ! ? (or after one or two closing quotes/brackets that
# follow them): the closers stay with their sentence.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]])|(?<=[.!?][\"')\]][\"')\]]))\s+(?=\S)")
_HEADING = re.compile(r"(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_HEADING_LINE = re.compile(r"^#{1,6}[ \t]+\S.*$", re.M)
_WORD = re.compile(r"\S+")
# A heading's section number: "20.4.1. ", "20.4.1 ", "F.3. ", "IV. ".
_SECTION_NUMBER = re.compile(r"^\s*(?:(?:[A-Z]|[IVX]+|\d+)\.(?:\d+\.?)*|[A-Z]?\d+(?:\.\d+)*\.?)\s+")


def section_name(heading: str) -> str:
    """The last part of a heading path, without its section number
    ("20.4. Resource Consumption > 20.4.1. Memory" -> "Memory")."""
    return _SECTION_NUMBER.sub("", heading.rsplit(" > ", 1)[-1]).strip()


@dataclass(frozen=True)
class ChunkSpec:
    text: str
    page: int | None
    heading: str
    char_start: int
    char_end: int
    token_count: int


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    heading: str  # heading path in force at this unit
    opens_section: bool = False  # a heading line or a table piece: a chunk starts here
    prefix: str = ""  # repeated table header rows, shown before the span


@dataclass(frozen=True)
class _Budget:
    """What one passage may hold, and how its tokens are counted."""

    count: TokenCounter
    tokens: int
    chars: int

    def fits(self, text: str, start: int, end: int, prefix: str = "") -> int | None:
        """The tokens of prefix + text[start:end] when within both caps, else None
        (the characters are checked first: counting a huge span is what is slow)."""
        if end - start + len(prefix) > self.chars:
            return None
        tokens = self.count(prefix + text[start:end])
        return tokens if tokens <= self.tokens else None


def chunk_pages(
    pages: Iterable[Page],
    count_tokens: TokenCounter,
    max_tokens: int,
    overlap: int = 0,
    *,
    max_chars: int | None = None,
    guard: Guard | None = None,
) -> list[ChunkSpec]:
    """Passages of at most `max_tokens` tokens and `max_chars` characters (no
    character cap when None). `guard` is told of every unit and passage made,
    so limits on time and passage count hold while a document is chunked."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    if max_chars is not None and max_chars < 1:
        raise ValueError("max_chars must be positive")
    budget = _Budget(count_tokens, max_tokens, sys.maxsize if max_chars is None else max_chars)
    guard = guard or Guard()
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[ChunkSpec] = []
    heading_stack: list[tuple[int, str]] = []  # (level, text) of the headings in force
    for page in pages:
        units = []
        for unit in _units(page.text, budget, heading_stack):
            guard.step()
            units.append(unit)
        for start_i, end_i in _pack(units, budget, overlap):
            guard.add_chunk()
            first, last = units[start_i], units[end_i - 1]
            text = first.prefix + page.text[first.start : last.end]
            chunks.append(
                ChunkSpec(
                    text=text,
                    page=page.number,
                    heading=first.heading,
                    char_start=first.start,
                    char_end=last.end,
                    # The units are split at white space, so their counts add up
                    # (exact for WordPiece and word counters alike).
                    token_count=sum(u.tokens for u in units[start_i:end_i]),
                )
            )
    return chunks


def _units(text: str, budget: _Budget, heading_stack: list[tuple[int, str]]):
    """Sentence-sized spans of `text`, each within the budget."""
    blocks = list(_blocks(text))
    tables = [_is_table(text, a, b) for a, b in blocks]
    sentences = [[] if table else list(_spans(text, _SENTENCE_END, a, b)) for (a, b), table in zip(blocks, tables)]
    # Batched tokenizer calls for the whole page; a sentence over the character
    # cap is split by words anyway, and is not counted whole.
    flat = [tokens for _, tokens in _counted(text, (span for spans in sentences for span in spans), budget)]
    position = 0
    for (block_start, block_end), table, spans in zip(blocks, tables, sentences):
        heading = _HEADING.match(text, block_start, block_end)
        if heading:
            level = len(heading.group(1))
            # A heading closes those at its level and below, whatever levels
            # the page skips or starts at ("##" first, "####" under "##").
            while heading_stack and heading_stack[-1][0] >= level:
                heading_stack.pop()
            heading_stack.append((level, heading.group(2).strip()))
        path = " > ".join(name for _, name in heading_stack)
        if table:
            yield from _table_units(text, block_start, block_end, budget, path)
            continue
        counts = flat[position : position + len(spans)]
        position += len(spans)
        first = True
        for (s_start, s_end), tokens in zip(spans, counts):
            if tokens is not None and tokens <= budget.tokens:
                yield _Unit(s_start, s_end, tokens, path, opens_section=bool(heading) and first)
            else:
                pieces = list(_split_words(text, s_start, s_end, budget, path))
                if heading and first and pieces:
                    pieces[0] = _Unit(pieces[0].start, pieces[0].end, pieces[0].tokens, path, opens_section=True)
                yield from pieces
            first = False


def _count_all(count_tokens: TokenCounter, texts: list[str]) -> list[int]:
    """Counts for many texts: batched when the counter offers `.many`."""
    many = getattr(count_tokens, "many", None)
    return many(texts) if many is not None and len(texts) > 1 else [count_tokens(t) for t in texts]


def _counted(
    text: str, spans: Iterable[tuple[int, int]], budget: _Budget
) -> Iterator[tuple[tuple[int, int], int | None]]:
    """Each span with its token count, counted in batches; None for a span
    over the character cap (not counted: it will be split)."""
    batch: list[tuple[int, int]] = []

    def flush():
        countable = [(a, b) for a, b in batch if b - a <= budget.chars]
        counts = dict(zip(countable, _count_all(budget.count, [text[a:b] for a, b in countable])))
        return [(span, counts.get(span)) for span in batch]

    for span in spans:
        batch.append(span)
        if len(batch) == COUNT_BATCH:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def _runs(text: str, spans: Iterable[tuple[int, int]], budget: _Budget) -> Iterator[tuple[int, int, int | None]]:
    """Greedy runs of consecutive spans (white space between them) within the
    budget, in one pass: (start, end, tokens), or tokens None for a span over
    the budget on its own. Spans are counted once, in batches, and their counts
    added: counts add up over white space for WordPiece and word counters. Each
    run is counted whole once more; for a counter whose counts do not add up,
    a run over the budget is regrown span by span."""
    run: list[tuple[int, int]] = []
    total = 0
    for (start, end), tokens in _counted(text, spans, budget):
        alone_over = tokens is None or tokens > budget.tokens
        if run and (alone_over or total + tokens > budget.tokens or end - run[0][0] > budget.chars):
            yield from _checked(text, run, budget)
            run, total = [], 0
        if alone_over:
            yield start, end, None
            continue
        run.append((start, end))
        total += tokens
    if run:
        yield from _checked(text, run, budget)


def _checked(text: str, run: list[tuple[int, int]], budget: _Budget) -> Iterator[tuple[int, int, int | None]]:
    tokens = budget.fits(text, run[0][0], run[-1][1])
    if tokens is not None:
        yield run[0][0], run[-1][1], tokens
        return
    i = 0  # counts that do not add up: grow each piece by whole spans
    while i < len(run):
        j = i + 1
        while j < len(run) and budget.fits(text, run[i][0], run[j][1]) is not None:
            j += 1
        yield run[i][0], run[j - 1][1], budget.fits(text, run[i][0], run[j - 1][1])
        i = j


def _is_table(text: str, start: int, end: int) -> bool:
    lines = text[start:end].split("\n")
    return len(lines) >= 2 and all(line.lstrip().startswith("|") for line in lines)


def _table_units(text, start, end, budget: _Budget, heading):
    """A whole table as one unit; else pieces of rows, each under a copy of the header."""
    tokens = budget.fits(text, start, end)
    if tokens is not None:
        yield _Unit(start, end, tokens, heading, opens_section=True)
        return
    rows, cursor = [], start  # (start, end) of every line
    for line in text[start:end].split("\n"):
        rows.append((cursor, cursor + len(line)))
        cursor += len(line) + 1
    header_rows = 2 if len(rows) > 2 and set(text[rows[1][0] : rows[1][1]].strip()) <= set("|-: ") else 1
    header = text[rows[0][0] : rows[header_rows - 1][1]] + "\n"
    rows_budget = _Budget(budget.count, budget.tokens - budget.count(header), budget.chars - len(header))
    if rows_budget.tokens < 1 or rows_budget.chars < 1:  # a header over the budget: plain word splitting
        yield from _split_words(text, start, end, budget, heading)
        return
    first = True
    for piece_start, piece_end, tokens in _runs(text, rows[header_rows:], rows_budget):
        if tokens is None:  # one huge row
            yield from _split_words(text, piece_start, piece_end, budget, heading)
        elif first:  # the first piece holds the header itself
            yield _Unit(start, piece_end, budget.count(text[start:piece_end]), heading, opens_section=True)
        else:
            prefix_tokens = budget.count(header + text[piece_start:piece_end])
            yield _Unit(piece_start, piece_end, prefix_tokens, heading, opens_section=True, prefix=header)
        first = False


def _blocks(text: str):
    """Paragraph spans, with each Markdown heading line a block of its own."""
    for para_start, para_end in _spans(text, _PARAGRAPH, 0, len(text)):
        cursor = para_start
        for match in _HEADING_LINE.finditer(text, para_start, para_end):
            yield from _trimmed(text, cursor, match.start())
            yield from _trimmed(text, match.start(), match.end())
            cursor = match.end()
        yield from _trimmed(text, cursor, para_end)


def _spans(text: str, separator: re.Pattern, start: int, end: int):
    """Non-blank spans of text[start:end] between separator matches, trimmed."""
    cursor = start
    for match in separator.finditer(text, start, end):
        yield from _trimmed(text, cursor, match.start())
        cursor = match.end()
    yield from _trimmed(text, cursor, end)


def _trimmed(text: str, start: int, end: int):
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def _split_words(text, start, end, budget: _Budget, heading):
    """An over-long sentence cut at word boundaries into pieces within the budget."""
    words = ((m.start(), m.end()) for m in _WORD.finditer(text, start, end))
    for piece_start, piece_end, tokens in _runs(text, words, budget):
        if tokens is None:
            # A single "word" over the budget (a URL, a hash, a run without spaces): cut by characters.
            yield from _split_chars(text, piece_start, piece_end, budget, heading)
        else:
            yield _Unit(piece_start, piece_end, tokens, heading)


def _split_chars(text, start, end, budget: _Budget, heading):
    while start < end:
        lo, hi = start + 1, min(end, start + budget.chars)
        tokens = budget.fits(text, start, hi)
        if tokens is not None:  # the common case for a run without spaces: one [UNK]
            lo = hi
        while lo < hi:  # longest prefix within budget
            mid = (lo + hi + 1) // 2
            if budget.fits(text, start, mid) is not None:
                lo = mid
            else:
                hi = mid - 1
        yield _Unit(start, lo, budget.count(text[start:lo]) if tokens is None else tokens, heading)
        start = lo


def _pack(units: list[_Unit], budget: _Budget, overlap: int):
    """Greedy ranges [i, j) of units whose tokens and characters fit; next range overlaps."""
    i = 0
    while i < len(units):
        j, total = i, 0
        while (
            j < len(units)
            and total + units[j].tokens <= budget.tokens
            and units[j].end - units[i].start + len(units[i].prefix) <= budget.chars
        ):
            if j > i and units[j].opens_section:
                break  # a heading starts a new chunk
            total += units[j].tokens
            j += 1
        j = max(j, i + 1)
        yield i, j
        if j >= len(units):
            return
        if units[j].opens_section:
            i = j  # no overlap across a section boundary
            continue
        # Step back over whole trailing units for the overlap, always moving forward.
        k, carried = j, 0
        while k - 1 > i and carried + units[k - 1].tokens <= overlap:
            carried += units[k - 1].tokens
            k -= 1
        i = k
