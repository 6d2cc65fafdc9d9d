"""Split page text into passages that fit the embedder's token budget. Pure.

Structure first: paragraphs, then sentences, then words (never mid-word).
Passages stay within one page so each can cite its page; consecutive passages
overlap by up to `overlap` tokens of whole sentences. A Markdown heading starts
a new passage. A Markdown table stays whole when it fits; one that must be
split repeats its header rows at the top of every piece. Offsets point into
the page's text: `page.text[start:end] == chunk.text`, except that a table
piece's text is its repeated header followed by `page.text[start:end]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingestion.parsing import Page

TokenCounter = Callable[[str], int]

_PARAGRAPH = re.compile(r"\n\s*\n")
# White space after . ! ? (or after one or two closing quotes/brackets that
# follow them): the closers stay with their sentence.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]])|(?<=[.!?][\"')\]][\"')\]]))\s+(?=\S)")
_HEADING = re.compile(r"(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_HEADING_LINE = re.compile(r"^#{1,6}[ \t]+\S.*$", re.M)
_WORD = re.compile(r"\S+")


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


def chunk_pages(pages: Iterable[Page], count_tokens: TokenCounter, max_tokens: int, overlap: int = 0) -> list[ChunkSpec]:
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[ChunkSpec] = []
    heading_stack: list[str] = []
    for page in pages:
        units = list(_units(page.text, count_tokens, max_tokens, heading_stack))
        for start_i, end_i in _pack(units, max_tokens, overlap):
            first, last = units[start_i], units[end_i - 1]
            text = first.prefix + page.text[first.start:last.end]
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


def _units(text: str, count_tokens: TokenCounter, max_tokens: int, heading_stack: list[str]):
    """Sentence-sized spans of `text`, each within the budget."""
    blocks = list(_blocks(text))
    tables = [_is_table(text, a, b) for a, b in blocks]
    sentences = [[] if table else list(_spans(text, _SENTENCE_END, a, b)) for (a, b), table in zip(blocks, tables)]
    # One tokenizer call for the whole page.
    flat = _count_all(count_tokens, [text[a:b] for spans in sentences for a, b in spans])
    position = 0
    for (block_start, block_end), table, spans in zip(blocks, tables, sentences):
        heading = _HEADING.match(text, block_start, block_end)
        if heading:
            level = len(heading.group(1))
            del heading_stack[level - 1:]
            heading_stack.append(heading.group(2).strip())
        path = " > ".join(heading_stack)
        if table:
            yield from _table_units(text, block_start, block_end, count_tokens, max_tokens, path)
            continue
        counts = flat[position:position + len(spans)]
        position += len(spans)
        first = True
        for (s_start, s_end), tokens in zip(spans, counts):
            if tokens <= max_tokens:
                yield _Unit(s_start, s_end, tokens, path, opens_section=bool(heading) and first)
            else:
                pieces = list(_split_words(text, s_start, s_end, count_tokens, max_tokens, path))
                if heading and first and pieces:
                    pieces[0] = _Unit(pieces[0].start, pieces[0].end, pieces[0].tokens, path, opens_section=True)
                yield from pieces
            first = False


def _count_all(count_tokens: TokenCounter, texts: list[str]) -> list[int]:
    """Counts for many texts: batched when the counter offers `.many`."""
    many = getattr(count_tokens, "many", None)
    return many(texts) if many is not None and len(texts) > 1 else [count_tokens(t) for t in texts]


def _is_table(text: str, start: int, end: int) -> bool:
    lines = text[start:end].split("\n")
    return len(lines) >= 2 and all(line.lstrip().startswith("|") for line in lines)


def _table_units(text, start, end, count_tokens, max_tokens, heading):
    """A whole table as one unit; else pieces of rows, each under a copy of the header."""
    tokens = count_tokens(text[start:end])
    if tokens <= max_tokens:
        yield _Unit(start, end, tokens, heading, opens_section=True)
        return
    rows, cursor = [], start  # (start, end) of every line
    for line in text[start:end].split("\n"):
        rows.append((cursor, cursor + len(line)))
        cursor += len(line) + 1
    header_rows = 2 if len(rows) > 2 and set(text[rows[1][0]:rows[1][1]].strip()) <= set("|-: ") else 1
    header = text[rows[0][0]:rows[header_rows - 1][1]] + "\n"
    budget = max_tokens - count_tokens(header)
    if budget < 1:  # a header over the budget: fall back to plain word splitting
        yield from _split_words(text, start, end, count_tokens, max_tokens, heading)
        return
    body = rows[header_rows:]
    i, first = 0, True
    while i < len(body):
        j = i + 1
        while j < len(body) and count_tokens(text[body[i][0]:body[j][1]]) <= budget:
            j += 1
        piece_start, piece_end = body[i][0], body[j - 1][1]
        if count_tokens(text[piece_start:piece_end]) > budget:  # one huge row
            yield from _split_words(text, piece_start, piece_end, count_tokens, max_tokens, heading)
        elif first:  # the first piece holds the header itself
            yield _Unit(start, piece_end, count_tokens(text[start:piece_end]), heading, opens_section=True)
        else:
            prefix_tokens = count_tokens(header + text[piece_start:piece_end])
            yield _Unit(piece_start, piece_end, prefix_tokens, heading, opens_section=True, prefix=header)
        first = False
        i = j


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


def _split_words(text, start, end, count_tokens, max_tokens, heading):
    """An over-long sentence cut at word boundaries into pieces within the budget."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    i = 0
    while i < len(words):
        j = i + 1
        # Grow greedily; a counter is monotone enough over whole words.
        while j < len(words) and count_tokens(text[words[i][0]:words[j][1]]) <= max_tokens:
            j += 1
        piece_start, piece_end = words[i][0], words[j - 1][1]
        if count_tokens(text[piece_start:piece_end]) > max_tokens:
            # A single "word" longer than the budget (a URL, a hash): cut by characters.
            yield from _split_chars(text, piece_start, piece_end, count_tokens, max_tokens, heading)
        else:
            yield _Unit(piece_start, piece_end, count_tokens(text[piece_start:piece_end]), heading)
        i = j


def _split_chars(text, start, end, count_tokens, max_tokens, heading):
    while start < end:
        lo, hi = start + 1, end
        while lo < hi:  # longest prefix within budget
            mid = (lo + hi + 1) // 2
            if count_tokens(text[start:mid]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        yield _Unit(start, lo, count_tokens(text[start:lo]), heading)
        start = lo


def _pack(units: list[_Unit], max_tokens: int, overlap: int):
    """Greedy ranges [i, j) of units whose tokens fit; next range overlaps."""
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and total + units[j].tokens <= max_tokens:
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
