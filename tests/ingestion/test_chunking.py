"""ingestion/chunking.py: passages within the token budget, exact offsets, whole words."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestion.chunking import chunk_pages, section_name
from ingestion.parsing import Page
from ingestion.tokens import count_tokens


def words(text: str) -> int:
    return len(text.split())


COUNTERS = [pytest.param(words, id="words"), pytest.param(count_tokens, id="tokenizer")]

PROSE = (
    "Retrieval augmented generation answers questions from documents. "
    "First the documents are split into passages! Each passage is embedded once. "
    "Why does the budget matter? The embedder truncates long inputs, so text would be lost.\n\n"
    "A second paragraph follows the first one. It has several short sentences. "
    "They are packed greedily into passages. Overlap repeats whole sentences.\n\n"
    "The third paragraph closes the page. Nothing else happens here."
)


def check_invariants(pages, chunks, count, max_tokens, *, whole_words=True):
    """The properties every chunking must have."""
    by_number = {}
    for chunk in chunks:
        page = next(p for p in pages if p.number == chunk.page)
        by_number.setdefault(chunk.page, []).append(chunk)
        assert chunk.text.endswith(
            page.text[chunk.char_start : chunk.char_end]
        )  # a table piece repeats its header first
        assert chunk.text == chunk.text.strip() and chunk.text
        assert chunk.token_count == count(chunk.text)
        assert chunk.token_count <= max_tokens, chunk
        if whole_words:
            assert chunk.char_start == 0 or page.text[chunk.char_start - 1].isspace(), chunk
            assert chunk.char_end == len(page.text) or page.text[chunk.char_end].isspace(), chunk
    for page in pages:
        page_chunks = by_number.get(page.number, [])
        starts = [c.char_start for c in page_chunks]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)  # always moving forward
        covered = [False] * len(page.text)
        for chunk in page_chunks:
            covered[chunk.char_start : chunk.char_end] = [True] * (chunk.char_end - chunk.char_start)
        missing = [i for i, ch in enumerate(page.text) if not ch.isspace() and not covered[i]]
        assert not missing, f"characters not in any chunk: {[page.text[i] for i in missing]}"


@pytest.mark.parametrize("count", COUNTERS)
@pytest.mark.parametrize("max_tokens", [5, 12, 30, 200])
@pytest.mark.parametrize("overlap", [0, 4, 10])
def test_it_keeps_chunks_within_budget_exact_complete_and_whole_worded(count, max_tokens, overlap):
    pages = [Page(1, PROSE)]
    chunks = chunk_pages(pages, count, max_tokens, overlap)
    assert chunks
    check_invariants(pages, chunks, count, max_tokens)


@pytest.mark.parametrize("count", COUNTERS)
def test_it_makes_one_chunk_when_everything_fits(count):
    chunks = chunk_pages([Page(None, "  " + PROSE + "\n\n")], count, 1000, 20)
    assert len(chunks) == 1
    assert chunks[0].text == PROSE
    assert (chunks[0].char_start, chunks[0].char_end) == (2, 2 + len(PROSE))
    assert chunks[0].page is None


@pytest.mark.parametrize("count", COUNTERS)
def test_it_shares_whole_sentences_between_consecutive_chunks_with_overlap(count):
    text = " ".join(f"Sentence number {n} is short." for n in range(1, 21))
    pages = [Page(1, text)]
    chunks = chunk_pages(
        pages,
        count,
        max_tokens=count("Sentence number 1 is short.") * 4,
        overlap=count("Sentence number 1 is short.") * 2,
    )
    check_invariants(pages, chunks, count, count("Sentence number 1 is short.") * 4)
    assert len(chunks) > 2
    for previous, current in zip(chunks, chunks[1:]):
        assert current.char_start < previous.char_end  # the ranges overlap
        shared = text[current.char_start : previous.char_end]
        assert re.fullmatch(r"(Sentence number \d+ is short\.\s*)+", shared), shared


def test_it_shares_nothing_without_overlap():
    text = " ".join(f"Sentence number {n} is short." for n in range(1, 21))
    chunks = chunk_pages([Page(1, text)], words, max_tokens=20, overlap=0)
    assert len(chunks) == 5
    for previous, current in zip(chunks, chunks[1:]):
        assert current.char_start > previous.char_end


def test_it_caps_overlap_at_half_the_budget_and_still_moves_forward():
    text = " ".join(f"Word{n} word." for n in range(40))
    pages = [Page(1, text)]
    chunks = chunk_pages(pages, words, max_tokens=6, overlap=100)
    check_invariants(pages, chunks, words, 6)
    for previous, current in zip(chunks, chunks[1:]):
        assert words(text[current.char_start : previous.char_end]) <= 3


def test_it_splits_an_over_long_sentence_at_word_boundaries():
    sentence = " ".join(f"w{n}" for n in range(50)) + "."
    pages = [Page(1, sentence)]
    chunks = chunk_pages(pages, words, max_tokens=8)
    check_invariants(pages, chunks, words, 8)
    assert [c.token_count for c in chunks] == [8] * 6 + [2]


@pytest.mark.parametrize("trailing", ["", " and then some words."])
def test_it_splits_a_single_over_long_word_by_characters_under_budget(trailing):
    def chars(text):  # one token per character: 'x' * 5000 is far over budget
        return len(text)

    text = "Start. " + "x" * 5000 + trailing
    pages = [Page(1, text)]
    chunks = chunk_pages(pages, chars, max_tokens=100)
    check_invariants(pages, chunks, chars, 100, whole_words=False)
    assert sum(c.text.count("x") for c in chunks) == 5000
    assert max(c.token_count for c in chunks) == 100


def test_it_splits_a_long_word_with_the_real_tokenizer_under_budget():
    word = "supercalifragilisticexpialidocious" * 2  # < 100 chars, so word pieces, not [UNK]
    text = f"Begin here. {word} ends it."
    assert count_tokens(word) > 8
    pages = [Page(1, text)]
    chunks = chunk_pages(pages, count_tokens, max_tokens=8)
    check_invariants(pages, chunks, count_tokens, 8, whole_words=False)
    assert word in "".join(c.text for c in chunks)


def test_it_rejects_a_non_positive_budget():
    with pytest.raises(ValueError):
        chunk_pages([Page(1, "text")], words, 0)


def test_it_returns_nothing_for_blank_pages():
    assert chunk_pages([Page(1, ""), Page(2, " \n\n\t ")], words, 10) == []


MARKDOWN = """# Guide

Welcome to the guide. It explains everything.

## Install

Run the installer. Then restart.

### Linux

Use the package manager.

## Usage

Open the app.

# Appendix

Extra notes.
"""


def test_it_records_the_markdown_heading_path_on_chunks():
    chunks = chunk_pages([Page(None, MARKDOWN)], words, max_tokens=4)
    assert [(c.text, c.heading) for c in chunks] == [
        ("# Guide", "Guide"),
        ("Welcome to the guide.", "Guide"),
        ("It explains everything.", "Guide"),
        ("## Install", "Guide > Install"),
        ("Run the installer.", "Guide > Install"),
        ("Then restart.", "Guide > Install"),  # a heading always starts a new chunk
        ("### Linux", "Guide > Install > Linux"),
        ("Use the package manager.", "Guide > Install > Linux"),
        ("## Usage", "Guide > Usage"),
        ("Open the app.", "Guide > Usage"),
        ("# Appendix\n\nExtra notes.", "Appendix"),
    ]


def test_sibling_headings_replace_each_other_whatever_level_the_page_starts_at():
    # An HTML page's first heading is often "##"; its settings "####" under "###".
    page = "## Resources\n\n### Memory\n\n#### shared_buffers\n\nA.\n\n#### work_mem\n\nB.\n\n## Disk\n\nC."
    chunks = chunk_pages([Page(None, page)], words, max_tokens=1000)
    assert {c.text.splitlines()[-1]: c.heading for c in chunks if c.text.endswith(".")} == {
        "A.": "Resources > Memory > shared_buffers",
        "B.": "Resources > Memory > work_mem",  # not "... > shared_buffers > work_mem"
        "C.": "Disk",
    }


def test_a_sections_name_is_its_headings_last_part_without_its_number():
    assert section_name("20.4. Resource Consumption > 20.4.1. Memory") == "Memory"
    assert [section_name(h) for h in ("F.3. auth_delay", "IV. Client Interfaces", "8.14 JSON Types")] == [
        "auth_delay",
        "Client Interfaces",
        "JSON Types",
    ]
    assert section_name("2FA setup") == "2FA setup" and section_name("work_mem (integer)") == "work_mem (integer)"


def test_it_starts_a_chunk_at_every_heading():
    chunks = chunk_pages([Page(None, MARKDOWN)], words, max_tokens=1000)
    assert [c.heading for c in chunks] == [
        "Guide",
        "Guide > Install",
        "Guide > Install > Linux",
        "Guide > Usage",
        "Appendix",
    ]
    assert all(c.text.startswith("#") for c in chunks)


def test_it_treats_a_heading_line_inside_a_paragraph_as_a_heading():
    # CommonMark: an ATX heading may interrupt a paragraph.
    text = "Intro.\n\n## Setup\nRun it.\n\nEnd."
    chunks = chunk_pages([Page(None, text)], words, max_tokens=1000)
    assert [(c.text, c.heading) for c in chunks] == [("Intro.", ""), ("## Setup\nRun it.\n\nEnd.", "Setup")]


@pytest.mark.parametrize("count", COUNTERS)
def test_it_keeps_page_numbers_and_never_crosses_pages(count):
    pages = [Page(n, f"Page {n} first sentence here. Page {n} second sentence here.") for n in (1, 2, 3)]
    chunks = chunk_pages(pages, count, max_tokens=1000, overlap=5)
    assert [c.page for c in chunks] == [1, 2, 3]
    for chunk in chunks:
        assert chunk.text == pages[chunk.page - 1].text
    check_invariants(pages, chunks, count, 1000)


def test_it_carries_the_heading_path_across_pages():
    pages = [Page(1, "# Manual\n\n## Safety\n\nWear gloves."), Page(2, "Keep the lid closed.")]
    chunks = chunk_pages(pages, words, max_tokens=2)
    assert chunks[-1].page == 2
    assert {c.heading for c in chunks if c.page == 2} == {"Manual > Safety"}


def test_it_keeps_a_closing_quote_with_its_sentence():
    text = 'She said "stop." Then she left.'
    pages = [Page(1, text)]
    chunks = chunk_pages(pages, words, max_tokens=3)
    assert [c.text for c in chunks] == ['She said "stop."', "Then she left."]
    check_invariants(pages, chunks, words, 3)


# -- property test ------------------------------------------------------------

word_st = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789éü'-,", min_size=1, max_size=10)
sentence_st = st.builds(
    lambda ws, end: " ".join(ws) + end,
    st.lists(word_st, min_size=1, max_size=25),
    st.sampled_from([".", "!", "?", "", "...", ":"]),
)
paragraph_st = st.builds(
    lambda ss, seps: "".join(s + sep for s, sep in zip(ss, seps)),
    st.lists(sentence_st, min_size=1, max_size=8),
    st.lists(st.sampled_from([" ", "  ", "\n", " \t"]), min_size=8, max_size=8),
)
page_st = st.builds(
    lambda lead, ps, sep: lead + sep.join(ps),
    st.sampled_from(["", " ", "\n\n", "# Title\n\n"]),
    st.lists(paragraph_st, min_size=1, max_size=6),
    st.sampled_from(["\n\n", "\n \n", "\n\n\n", "\r\n\r\n"]),
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pages_text=st.lists(page_st, min_size=1, max_size=3),
    use_tokenizer=st.booleans(),
    max_tokens=st.integers(min_value=12, max_value=80),
    overlap=st.integers(min_value=0, max_value=40),
    max_chars=st.one_of(st.none(), st.integers(min_value=40, max_value=600)),
)
def test_it_holds_its_invariants_on_random_texts(pages_text, use_tokenizer, max_tokens, overlap, max_chars):
    # No chunk may cut a word, unless that word alone is over the budget (a
    # 10-character word with "..." after it can be 13 tokens) and must be cut.
    count = count_tokens if use_tokenizer else words
    pages = [Page(n, text) for n, text in enumerate(pages_text, start=1)]
    chunks = chunk_pages(pages, count, max_tokens, overlap, max_chars=max_chars)
    whole_words = all(count(word) <= max_tokens for text in pages_text for word in text.split())
    check_invariants(pages, chunks, count, max_tokens, whole_words=whole_words)
    assert max_chars is None or all(len(c.text) <= max_chars for c in chunks)
    assert {c.page for c in chunks} == {p.number for p in pages if p.text.strip()}


TABLE_ROWS = "\n".join(f"| Card {i} | {i * 10} euros | notes about card {i} |" for i in range(30))
TABLE_DOC = (
    "# Fees\n\nIntro sentence here.\n\n| Card | Fee | Notes |\n|---|---|---|\n" + TABLE_ROWS + "\n\nAfter the table."
)


def test_it_keeps_a_table_that_fits_whole():
    chunks = chunk_pages([Page(1, TABLE_DOC)], words, max_tokens=1000)
    assert len(chunks) == 2  # the heading's section, then the table (a table starts a chunk)
    assert chunks[1].text.startswith("| Card | Fee | Notes |") and "Card 29" in chunks[1].text


@pytest.mark.parametrize("count", COUNTERS)
def test_it_repeats_the_header_row_in_every_piece_of_a_split_table(count):
    pages = [Page(1, TABLE_DOC)]
    chunks = chunk_pages(pages, count, max_tokens=60, overlap=10)
    pieces = [c for c in chunks if "| Card " in c.text and "euros" in c.text]
    assert len(pieces) > 2
    for piece in pieces:
        assert piece.text.startswith("| Card | Fee | Notes |\n|---|---|---|\n")
        assert piece.heading == "Fees"
    rows_seen = [line for piece in pieces for line in piece.text.split("\n")[2:] if line.startswith("| Card ")]
    assert rows_seen == TABLE_ROWS.split("\n")  # every row once, in order, none cut
    check_invariants(pages, chunks, count, 60)


# -- a cap in characters as well as tokens (issue #12) --------------------------


@pytest.mark.parametrize("count", COUNTERS)
def test_a_run_without_spaces_is_cut_by_characters_though_it_is_one_token(count):
    # 'G' * 5,000 is one word to a word counter and one [UNK] to the tokenizer:
    # without a character cap it became one 5,000-character passage.
    text = "What is the annual fee of the Gold card? " + "G" * 5_000
    pages = [Page(None, text)]
    chunks = chunk_pages(pages, count, max_tokens=100, max_chars=800)
    check_invariants(pages, chunks, count, 100, whole_words=False)
    assert max(len(c.text) for c in chunks) <= 800
    assert sum(c.text.count("G") for c in chunks) == 5_000 + 1  # 'Gold' too


@pytest.mark.parametrize("count", COUNTERS)
def test_the_character_cap_holds_for_sentences_words_tables_and_packing(count):
    long_words = " ".join(["x" * 90] * 30) + "."  # few tokens each for a word counter, many characters
    pages = [Page(1, PROSE + "\n\n" + long_words), Page(2, TABLE_DOC)]
    chunks = chunk_pages(pages, count, max_tokens=60, overlap=10, max_chars=300)
    check_invariants(pages, chunks, count, 60, whole_words=False)
    assert max(len(c.text) for c in chunks) <= 300
    pieces = [c for c in chunks if c.page == 2 and "euros" in c.text]
    assert len(pieces) > 2 and all(p.text.startswith("| Card | Fee | Notes |\n|---|---|---|\n") for p in pieces)


def test_ordinary_prose_is_not_cut_by_the_default_sized_cap():
    pages = [Page(1, PROSE)]
    assert chunk_pages(pages, count_tokens, 100, 20, max_chars=800) == chunk_pages(pages, count_tokens, 100, 20)


def test_a_long_line_of_words_is_counted_in_one_pass_not_once_per_word_added():
    # A 5 MB one-line text file took 221 s: each over-long sentence was grown
    # word by word, counting the whole piece again at every word.
    text = "alpha beta gamma delta epsilon zeta eta theta iota kappa " * 2_000  # one 'sentence', 110 KB
    counted = []

    def counting(text):
        counted.append(len(text))
        return words(text)

    counting.many = lambda texts: [counting(t) for t in texts]
    pages = [Page(None, text)]
    chunks = chunk_pages(pages, counting, max_tokens=100, overlap=20, max_chars=800)
    check_invariants(pages, chunks, words, 100)
    assert sum(counted) < 4 * len(text)  # each character counted a few times, not ~100
