"""generation/citations.py: sentence splitting, marker handling and attribution.

The embedder is a deterministic fake (hashed bag of words); the logic under
test is the scoring, verification and rendering, not the model."""

import re
import zlib

import numpy as np
import pytest

from generation.citations import (
    attribute,
    content_words,
    lexical_support,
    split_sentences,
    strip_markers,
    support_matrix,
)

THRESHOLD = 0.45
PASSAGES = [
    "Cats purr when they are content and relaxed at home.",
    "The Eiffel tower stands in Paris and was completed in 1889.",
    "Bananas contain plenty of potassium and vitamin B6.",
]


def fake_embed(texts):
    vectors = np.zeros((len(texts), 64), np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            vectors[row, zlib.crc32(word.encode()) % 64] += 1.0
        norm = np.linalg.norm(vectors[row])
        if norm:
            vectors[row] /= norm
    return vectors


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


def test_it_scores_lexical_support_as_the_share_of_content_words_found():
    assert lexical_support("Cats purr.", PASSAGES[0]) == 1.0
    assert lexical_support("Cats purr loudly.", PASSAGES[0]) == pytest.approx(2 / 3)
    assert lexical_support("Dogs bark.", PASSAGES[0]) == 0.0


def test_it_ignores_stopwords_and_stems_plurals_and_tenses():
    assert content_words("The cats were purring and it is what it is") == {"cat", "purr"}
    assert lexical_support("The cat purred.", "Cats purr.") == 1.0
    assert lexical_support("It is what it is.", PASSAGES[0]) == 0.0  # only stopwords


def test_it_keeps_decimal_numbers_as_one_word():
    assert content_words("Growth of 1.9% and 1,000 units") == {"growth", "1.9", "1,000", "unit"}


def test_it_blends_cosine_and_lexical_scores():
    sentences = ["Cats purr when content."]
    scores = support_matrix(sentences, PASSAGES, fake_embed(sentences), fake_embed(PASSAGES))
    assert scores.shape == (1, 3)
    assert int(np.argmax(scores[0])) == 0
    assert np.all((scores >= 0) & (scores <= 1.0001))


# -- attribute -------------------------------------------------------------------------


def test_it_cites_a_sentence_copied_from_the_second_passage_as_1():
    result = attribute(PASSAGES[1], PASSAGES, fake_embed, THRESHOLD)
    assert result.answer == "The Eiffel tower stands in Paris and was completed in 1889 [1]."
    assert result.cited == [1]
    assert result.sentences[0].passage == 1
    assert result.sentences[0].score >= THRESHOLD
    assert result.spans == {1: [(0, len(result.answer))]}


def test_it_drops_out_of_range_markers():
    result = attribute("Bananas contain potassium [9]. Cats purr when content [0].", PASSAGES, fake_embed, THRESHOLD)
    assert "[9]" not in result.answer and "[0]" not in result.answer
    assert [s.claimed for s in result.sentences] == [[9], [0]]
    assert [s.passage for s in result.sentences] == [2, 0]
    assert result.answer == "Bananas contain potassium [1]. Cats purr when content [2]."


def test_it_replaces_a_wrong_model_marker_with_the_supporting_passage():
    result = attribute("The Eiffel tower is in Paris [3].", PASSAGES, fake_embed, THRESHOLD)
    assert result.sentences[0].claimed == [3]
    assert result.sentences[0].passage == 1
    assert result.cited == [1]
    assert result.answer == "The Eiffel tower is in Paris [1]."


def test_it_keeps_a_verified_model_marker_over_a_slightly_better_passage():
    passages = ["The Eiffel tower is in Paris.", "The Eiffel tower is in Paris, France, near the Seine."]
    sentence = "The Eiffel tower is in Paris."
    unmarked = attribute(sentence, passages, fake_embed, THRESHOLD)
    marked = attribute("The Eiffel tower is in Paris [2].", passages, fake_embed, THRESHOLD)
    assert unmarked.sentences[0].passage == 0  # the best match
    assert marked.sentences[0].passage == 1  # the model's claim, above the threshold
    assert marked.cited == [1]


def test_it_gives_an_unsupported_sentence_no_marker():
    answer = "Cats purr when content. Quantum chromodynamics explains gluon confinement [2]."
    result = attribute(answer, PASSAGES, fake_embed, THRESHOLD)
    assert result.answer == "Cats purr when content [1]. Quantum chromodynamics explains gluon confinement."
    assert [s.passage for s in result.sentences] == [0, None]
    assert result.sentences[1].score < THRESHOLD
    assert result.cited == [0]
    assert 1 not in result.spans


def test_it_numbers_display_markers_in_order_of_first_use():
    answer = (
        "Bananas contain potassium. The Eiffel tower stands in Paris. "
        "Bananas contain vitamin B6. Cats purr when relaxed."
    )
    result = attribute(answer, PASSAGES, fake_embed, THRESHOLD)
    assert result.cited == [2, 1, 0]
    assert result.answer == (
        "Bananas contain potassium [1]. The Eiffel tower stands in Paris [2]. "
        "Bananas contain vitamin B6 [1]. Cats purr when relaxed [3]."
    )


def test_it_points_spans_at_the_cited_sentences_of_the_answer():
    answer = "  Bananas contain potassium. Cats purr when content!\nThe Eiffel tower stands in Paris. Bananas have vitamin B6.  "
    result = attribute(answer, PASSAGES, fake_embed, THRESHOLD)
    texts = {p: [result.answer[s:e] for s, e in spans] for p, spans in result.spans.items()}
    assert texts == {
        2: ["Bananas contain potassium [1].", "Bananas have vitamin B6 [1]."],
        0: ["Cats purr when content [2]!"],
        1: ["The Eiffel tower stands in Paris [3]."],
    }
    for sentence in result.sentences:
        assert result.answer[sentence.start:sentence.end] == sentence.text
    assert result.answer.startswith("Bananas") and result.answer.endswith("[1].")


def test_it_returns_the_clean_answer_when_there_are_no_passages():
    result = attribute(" Cats purr [1]. ", [], fake_embed, THRESHOLD)
    assert result.answer == "Cats purr."
    assert result.cited == [] and result.spans == {}
    assert [(s.text, s.passage) for s in result.sentences] == [("Cats purr.", None)]


def test_it_does_not_call_the_embedder_for_an_empty_answer():
    def boom(texts):
        raise AssertionError("embed called")

    result = attribute("  [1] ", PASSAGES, boom, THRESHOLD)
    assert (result.answer, result.sentences, result.cited, result.spans) == ("", [], [], {})


def test_it_credits_model_markers_to_their_sentence_despite_leading_whitespace():
    answer = "\n\nCats purr when content. [1] The Eiffel tower is in Paris."
    result = attribute(answer, PASSAGES, fake_embed, THRESHOLD)
    assert [s.claimed for s in result.sentences] == [[1], []]


FEES = ("The Silver card has no annual fee. The Gold card has an annual fee of 95 euros, which is waived in the "
        "first year. The Platinum card has an annual fee of 250 euros.")


@pytest.mark.parametrize(
    "sentence, agrees",
    [
        ("The annual fee of the Gold card is 95 euros.", True),
        ("The annual fee of the Gold card is 250 euros.", False),  # 250 is the Platinum card's fee
        ("The Platinum card costs 250 euros a year.", True),
        ("The Silver card has no fee.", True),  # no numbers to check
        ("The Gold card fee is 120 euros.", False),
    ],
)
def test_it_checks_a_sentences_numbers_against_the_passage_sentence_it_matches(sentence, agrees):
    from generation.citations import numbers_agree

    assert numbers_agree(sentence, FEES) is agrees


def test_a_sentence_with_the_wrong_number_is_left_uncited():
    result = attribute("The annual fee of the Gold card is 250 euros.", [FEES], fake_embed, threshold=0.2)
    assert result.sentences[0].passage is None and result.cited == [] and "[1]" not in result.answer
    right = attribute("The annual fee of the Gold card is 95 euros.", [FEES], fake_embed, threshold=0.2)
    assert right.sentences[0].passage == 0 and "[1]" in right.answer
