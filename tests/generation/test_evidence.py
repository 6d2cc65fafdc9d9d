"""Evidence selection (generation/evidence.py): pure, no database; vectors are made up."""

import numpy as np

from generation import evidence
from generation.evidence import Passage, profile, units

HANDBOOK = Passage(
    "The Silver card has no annual fee. Its purchase interest rate is 22.9 percent APR.\n"
    "The Gold card has an annual fee of 95 euros, which is waived in the first year.",
    title="Card Handbook",
    heading="Annual fees",
)
TABLE = Passage(
    "Rates by account:\n| Account | Rate |\n| --- | --- |\n| Easy Saver | 1.5% |\n| Fixed Saver | 3.1% |",
    heading="Rates",
)


def test_it_knows_what_kind_of_value_a_question_wants():
    assert profile("What is the annual fee of the Gold card?").wants == "amount"
    assert profile("how long do i have to file an expense claim").wants == "duration"
    assert profile("what's the interest on the easy saver").wants == "percent"
    assert profile("how many reward points per euro").wants == "number"
    assert profile("Which card includes lounge access?").wants == "any"
    assert profile("What's the default work_mem?").wants == "default"
    # A default asked for without the word: what you get when you do not choose.
    assert profile("which wal_level do you get if you never set it?").wants == "default"
    assert profile("which template does CREATE DATABASE copy if I don't specify one?").wants == "default"
    assert profile("pg_ctl stop without -m: which shutdown mode is used?").wants == "default"
    assert profile("what fillfactor do b-tree indexes use unless told otherwise").wants == "default"
    assert profile("can I pay without a card?").wants == "any"
    # A default of a kind: both count ("how long ... by default": a default that is a duration).
    assert profile("How many seconds does pg_ctl -w wait by default?").also == "duration"
    assert profile("default number of connection slots kept free for superusers?").also == "number"
    assert profile("What's the default work_mem?").also == ""
    assert profile("how long do i have to file an expense claim").also == ""  # only a default has a kind
    assert evidence.holds_wanted("The default value is four megabytes (4MB).", "default")
    assert not evidence.holds_wanted("Sets the base maximum amount of memory.", "default")
    assert set(profile("What is the annual fee of the Gold card?").terms) == {"annual", "fee", "gold", "card"}


def test_a_sentence_that_leans_on_the_one_before_is_quoted_with_it():
    found = units([HANDBOOK])
    its = next(u for u in found if u.text.endswith("22.9 percent APR."))
    assert its.text.startswith("The Silver card has no annual fee.")  # "Its ..." needs its subject
    assert HANDBOOK.text[its.start : its.end] == "Its purchase interest rate is 22.9 percent APR."
    gold = next(u for u in found if "95 euros" in u.text)
    assert gold.text == HANDBOOK.text[gold.start : gold.end]  # stands alone


def test_a_table_row_is_quoted_with_its_header():
    row = next(u for u in units([TABLE]) if "Fixed Saver" in TABLE.text[u.start : u.end])
    assert "| Account | Rate |" in row.text and row.text.endswith("| Fixed Saver | 3.1% |")


def test_rare_words_weigh_more():
    question = profile("zelle limit")
    weights = evidence.idf_weights(question, {"zelle": 0, "limit": 400}, 1000)
    assert weights["zelle"] > 3 * weights["limit"]
    assert evidence.idf_weights(question, None, 0) == {"zelle": 1.0, "limit": 1.0}


def test_the_sentence_with_the_asked_value_and_words_ranks_first():
    question = profile("What is the annual fee of the Gold card?")
    found = units([HANDBOOK])
    weights = evidence.idf_weights(question, None, 0)
    ranked = evidence.score(
        question, found, [HANDBOOK], weights, cosine=np.full(len(found), 0.5)
    )  # words and type decide
    assert "95 euros" in ranked[0].text
    assert ranked[0].features["type"] == 1.0 and ranked[-1].features["type"] == 0.0
    assert ranked[0].score > ranked[-1].score


def test_a_default_of_the_kind_asked_for_ranks_before_one_of_another_kind():
    """ "How many seconds ... by default?": the default that is a duration comes
    first; a default of no duration counts as half a match, not as a miss."""
    pg_ctl = Passage(
        "In prior releases, waiting was the default except for the stop mode.\n"
        "The default is to wait 60 seconds for start or stop to finish.",
        title="pg_ctl",
    )
    question = profile("How many seconds does pg_ctl wait for start or stop to finish by default?")
    found = units([pg_ctl])
    ranked = evidence.score(
        question, found, [pg_ctl], evidence.idf_weights(question, None, 0), np.full(len(found), 0.5)
    )
    assert "60 seconds" in ranked[0].text and ranked[0].features["type"] == 1.0
    assert ranked[1].features["type"] == 0.5 and evidence.ordered(ranked)[0] is ranked[0]


def test_selection_skips_overlapping_and_repeated_units():
    found = units([HANDBOOK, HANDBOOK])
    for i, unit in enumerate(found):
        unit.score = 1.0 - i / 10
    chosen = evidence.select(found, limit=5, max_chars=10_000)
    texts = [u.text for u in chosen]
    assert len(texts) == len(set(texts))
    for a in chosen:
        for b in chosen:
            assert (
                a is b or a.passage != b.passage or a.context_end <= b.context_start or b.context_end <= a.context_start
            )
    assert len(evidence.select(found, limit=1, max_chars=10_000)) == 1


def test_similarity_adds_to_the_cheap_first_pass():
    question = profile("What is the annual fee of the Gold card?")
    found = units([HANDBOOK])
    weights = evidence.idf_weights(question, None, 0)
    plain = {u.start: u.score for u in evidence.score(question, found, [HANDBOOK], weights)}
    cosine = np.linspace(0.2, 0.9, len(found))
    expected = {u.start: plain[u.start] + evidence.WEIGHTS["dense"] * float(c) for u, c in zip(found, cosine)}
    for unit in evidence.score(question, found, [HANDBOOK], weights, cosine):
        assert abs(unit.score - expected[unit.start]) < 1e-3 and unit.features["dense"] > 0


def test_a_sentence_is_quoted_with_the_term_it_defines():
    definition = Passage(
        "- `work_mem` (`integer`)\n- Sets the memory of a sort before it spills to disk. "
        "It is taken as kilobytes. The default value is four megabytes (`4MB`)."
    )
    default = next(u for u in units([definition]) if "4MB" in definition.text[u.start : u.end])
    assert default.text == "`work_mem` (`integer`) … The default value is four megabytes (`4MB`)."
    assert "work_mem" in evidence.terms(default.text)


def test_a_heading_line_is_context_never_evidence():
    # A parsed manual's headings: one ends in a full stop, one is long; neither is quoted alone.
    manual = Passage(
        "### F.3.1. Configuration Parameters\n\n#### auth_delay.milliseconds (integer) — the wait after a "
        "failed authentication attempt\n\n- The number of milliseconds to wait before reporting an "
        "authentication failure. The default is 0."
    )
    found = units([manual])
    assert [manual.text[u.start : u.end] for u in found] == [
        "- The number of milliseconds to wait before reporting an authentication failure.",
        "The default is 0.",
    ]
    default = found[-1]
    assert default.text.startswith(
        "auth_delay.milliseconds (integer) — the wait after a failed authentication attempt … "
    )
    assert "#" not in "".join(u.text for u in found)  # the quote shows the heading's words, not its Markdown


def test_a_sentence_naming_nothing_is_quoted_after_its_section_and_wrapped_lines_are_one_sentence():
    # A passage cut from the middle of a setting's section: its heading line is in an earlier passage.
    setting = Passage(
        "- Sets the maximum amount of memory used for temporary buffers within\n"
        "        each database session. The default is eight megabytes (`8MB`).",
        "20.4. Resource Consumption",
        "20.4. Resource Consumption > 20.4.1. Memory > temp_buffers (integer)",
    )
    numbered = Passage(
        "The maximum is 1000 digits.",
        "8.1. Numeric Types",
        "8.1. Numeric Types > 8.1.2. Arbitrary Precision Numbers",
    )
    found = units([setting])
    assert [setting.text[u.start : u.end] for u in found] == [
        "- Sets the maximum amount of memory used for temporary buffers within\n        each database session.",
        "The default is eight megabytes (`8MB`).",
    ]  # the source's line break inside a sentence does not make a heading of its first line
    assert found[1].text == "temp_buffers (integer) … The default is eight megabytes (`8MB`)."
    assert found[0].text == setting.text[found[0].start : found[0].end]  # it names its subject: quoted alone
    # A section number is no part of what a quote is about (a model answered "8.1.2").
    assert units([numbered])[0].text == "Arbitrary Precision Numbers … The maximum is 1000 digits."


def test_a_sentence_cut_by_the_chunk_boundary_is_completed_and_its_stray_end_skipped():
    cut = "Specifies the target of checkpoint completion, as a fraction of"
    following = "total time between checkpoints. The default is 0.9. Other text."
    assert evidence.completed(cut, following) == cut + " total time between checkpoints."
    assert evidence.completed("A whole sentence.", following) == "A whole sentence."
    stray = units([Passage("total time between checkpoints. The default is 0.9, which spreads the load.")])
    assert [u.text for u in stray] == ["The default is 0.9, which spreads the load."]


def test_the_order_favours_the_passage_retrieval_ranked_higher_and_the_gate_keeps_the_evidence_score():
    """Two passages saying the same: the order score puts the unit of the
    passage search ranked first ahead (a prior of 1/rank); the evidence score,
    which decides "not in the documents", does not depend on the rank."""
    same = "The Gold card has an annual fee of 95 euros."
    passages = [Passage("Other text. " + same, "Handbook", "Fees"), Passage(same, "Handbook", "Fees")]
    question = profile("gold card annual fee")
    found = [u for u in units(passages) if u.text.endswith(same)]
    ranked = evidence.score(
        question, found, passages, {t: 1.0 for t in question.terms}, cosine=np.full(len(found), 0.5)
    )
    first, second = sorted(ranked, key=lambda u: u.passage)
    assert first.score == second.score and first.order > second.order
    assert [u.passage for u in evidence.ordered(ranked)] == [0, 1]
    assert [u.passage for u in evidence.ordered(list(reversed(ranked)))] == [0, 1]


def test_a_unit_keeps_what_a_reader_is_shown_apart_from_what_the_model_reads():
    setting = "Memory settings follow.\nwork_mem (integer)\nThe default is four megabytes."
    table = "Fees by account.\n\n| Account | Monthly fee |\n|---|---|\n| Basic | 0 |\n| Premium | 12 euros |"
    passages = [evidence.Passage(setting, "Guide", "Settings"), evidence.Passage(table, "Guide", "Fees")]
    found = {u.text.splitlines()[-1]: u for u in evidence.units(passages)}
    default = found["The default is four megabytes."]
    assert default.text == "work_mem (integer)\nThe default is four megabytes."
    assert default.quote == "The default is four megabytes." and default.label == "work_mem (integer)"
    premium = found["| Premium | 12 euros |"]
    assert premium.text.startswith("| Account |") and premium.quote == "| Premium | 12 euros |"
    assert premium.header == "| Account | Monthly fee |" and premium.label == ""


def test_a_short_list_item_stating_a_value_is_evidence_and_one_naming_a_term_is_its_label():
    limits = Passage("Daily limits by channel:\n- Mobile app: 10,000 euros per day\n- Telephone: 5,000 euros per day")
    found = {u.quote for u in units([limits])}
    assert {"Mobile app: 10,000 euros per day", "Telephone: 5,000 euros per day"} <= found  # without their bullets


def test_selection_by_sentence_keeps_the_items_that_share_a_lead_in():
    limits = Passage("Daily limits by channel:\n- Mobile app: 10,000 euros per day\n- Telephone: 5,000 euros per day")
    found = [u for u in units([limits]) if u.text.startswith("Daily limits")]
    assert len(evidence.select(found, limit=8, max_chars=10**6)) < len(found)  # their contexts overlap
    assert len(evidence.select(found, limit=8, max_chars=10**6, by_sentence=True)) == len(found)
