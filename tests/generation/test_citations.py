"""generation/citations.py: sentence splitting and [n] marker handling."""

from generation.citations import split_sentences, strip_markers


def sentences_of(text):
    return [text[s:e] for s, e in split_sentences(text)]


# -- split_sentences ------------------------------------------------------------


def test_it_splits_sentences_at_end_punctuation():
    assert sentences_of("It rains. Does it? Yes!  It does.") == ["It rains.", "Does it?", "Yes!", "It does."]


def test_it_keeps_decimals_and_percentages_in_one_sentence():
    text = "Growth was 1.9% last year, and 3.14 is pi. Prices rose 2.5 percent."
    assert sentences_of(text) == ["Growth was 1.9% last year, and 3.14 is pi.", "Prices rose 2.5 percent."]


def test_it_keeps_list_items_whole():
    text = "Steps:\n1. Open the box.\n2) Remove the card.\n10. Done"
    assert sentences_of(text) == ["Steps:", "1. Open the box.", "2) Remove the card.", "10. Done"]


def test_it_splits_at_newlines_without_punctuation():
    assert sentences_of("First line\nSecond line\n\nThird line") == ["First line", "Second line", "Third line"]


def test_it_keeps_closing_quotes_and_brackets_with_the_sentence():
    assert sentences_of('He said "stop." (Then he left.) Fine.') == ['He said "stop."', "(Then he left.)", "Fine."]


def test_it_drops_spans_without_letters_or_digits():
    assert sentences_of("... !!! \n Real one. ?") == ["Real one."]
    assert split_sentences("") == []


def test_it_returns_trimmed_spans_into_the_original_text():
    text = "  Alpha beta.   Gamma delta?\n  Epsilon  "
    spans = split_sentences(text)
    assert spans == [(2, 13), (16, 28), (31, 38)]
    assert [text[s:e] for s, e in spans] == ["Alpha beta.", "Gamma delta?", "Epsilon"]


# -- strip_markers ----------------------------------------------------------------


def test_it_strips_markers_and_records_their_positions_in_the_clean_text():
    clean, markers = strip_markers("Cats purr [1]. Dogs bark [2, 3].")
    assert clean == "Cats purr. Dogs bark."
    assert markers == [(9, [1]), (20, [2, 3])]
    assert clean[:9] == "Cats purr" and clean[:20] == "Cats purr. Dogs bark"


def test_it_strips_markers_placed_after_the_punctuation():
    clean, markers = strip_markers("Cats purr. [1] Dogs bark.[2]")
    assert clean == "Cats purr. Dogs bark."
    assert markers == [(10, [1]), (21, [2])]


def test_it_leaves_text_without_markers_alone():
    assert strip_markers("See [a] and [1234] or [].") == ("See [a] and [1234] or [].", [])


# -- lexical support ----------------------------------------------------------------
