"""Claims and strict verification (generation/claims.py): pure, no database."""

import pytest

from generation.claims import abstains, has_amount, has_duration, has_percent, names, negated, numbers, terms, verify

PLATINUM = "The Platinum card has an annual fee of 250 euros. Its purchase interest rate is 17.9 percent APR."


def test_it_reads_numbers_in_digits_and_words():
    assert numbers("1,500 euros, 22.9%, five days, 128MB and 3.0") == {"1500", "22.9", "5", "128", "3"}
    assert numbers("no numbers here") == set()


def test_it_finds_the_kinds_of_values_questions_ask_for():
    assert (
        has_amount("a fee of 95 euros") and has_amount("€95") and has_amount("$1,500") and not has_amount("95 points")
    )
    assert has_percent("17.9 percent APR") and has_percent("2.5%") and not has_percent("17.9 points")
    assert has_duration("within five working days") and has_duration("30 days") and has_duration("the next working day")
    assert not has_duration("250 euros")


def test_it_reads_names_but_not_a_capital_that_only_opens_a_sentence():
    assert names("Transfers to London use SEPA. The Gold card works.") == {"london", "sepa", "gold"}
    assert "max_connections" in names("Raise max_connections first.")
    assert "transfers" not in names("Transfers arrive tomorrow.")


def test_terms_fold_plurals_number_words_and_identifiers():
    assert {"card", "5", "day"} <= terms("cards within five days")
    assert {"max_connection", "max", "connection"} <= terms("max_connections")


@pytest.mark.parametrize(
    "sentence",
    [
        "The Platinum card has an annual fee of 250 euros.",
        "The annual fee of the Platinum card is 250 euros.",
        "Its interest rate is 17.9 percent.",
        "The fee is 250 euros.",  # one word says what the value is of
    ],
)
def test_what_the_evidence_states_verifies(sentence):
    assert verify(sentence, PLATINUM, "What does the Platinum card cost?").ok


@pytest.mark.parametrize(
    "sentence, reason",
    [
        ("The Platinum card has no annual fee.", "negation"),  # "no fee" against "a fee of 250 euros"
        ("The Platinum card has an annual fee of 95 euros.", "numbers"),  # a wrong amount
        ("The Gold card has an annual fee of 250 euros.", "names"),  # another product's fee
        ("Your daily Zelle sending limit is 250 euros.", "names"),  # a service the evidence never names
        ("The Platinum card includes lounge access and concierge service.", "terms"),  # facts the evidence lacks
        ("The answer is: 250 euros.", "bare value"),  # a value the evidence holds, of nothing in particular
        ("17.9 percent", "bare value"),
    ],
)
def test_what_the_evidence_does_not_state_fails(sentence, reason):
    check = verify(sentence, PLATINUM, "What does the Platinum card cost?")
    assert not check.ok and any(reason in r for r in check.reasons)


def test_negation_is_compared_with_the_closest_evidence_sentence():
    evidence = "The Silver card has no annual fee. Its purchase interest rate is 22.9 percent APR."
    assert verify("The Silver card has no annual fee.", evidence).ok
    assert verify("The Silver card's interest rate is 22.9 percent.", evidence).ok
    assert not verify("The Silver card has an annual fee.", evidence).ok


def test_a_name_in_the_heading_or_title_counts():
    assert verify(
        "The Gold card fee is 95 euros.", "The fee is 95 euros, waived in the first year.", context="Gold card"
    ).ok


def test_the_document_title_backs_a_name_but_is_no_subject_of_its_own():
    """The model put the mortgage guide where the evidence has the arrangement fee."""
    evidence = "Arrangement fee: 999 euros on the Fixed Rate Mortgage."
    title = "Northwind Bank Mortgage Guide"
    context = f"{title} Fees"
    check = verify(
        "The Northwind Bank Mortgage Guide is 999 euros on the Fixed Rate Mortgage.",
        evidence,
        context=context,
        title=title,
    )
    assert check.reasons == ("names the document (Northwind Bank Mortgage Guide), not what the evidence describes",)
    assert verify(
        "The arrangement fee is 999 euros on the Fixed Rate Mortgage.", evidence, context=context, title=title
    ).ok
    # A title the evidence itself names, or a one-word title (a file name), is no such case.
    assert verify(
        "The Mortgage Guide lists no fee for it.", "The Mortgage Guide lists no fee for it.", title="Mortgage Guide"
    ).ok
    assert verify("The handbook lists the fees.", "The handbook lists the fees.", title="handbook").ok


def test_a_value_for_one_setting_is_not_backed_by_another_settings_section():
    neighbour = (
        "The default value is 2.0, which makes hash-based operations use twice the usual `work_mem` base amount."
    )
    about = "Resource Consumption > 20.4.1. Memory > hash_mem_multiplier (floating point)"
    check = verify("The default work_mem is 2.0.", neighbour, "What's the default work_mem?", context=about)
    assert not check.ok and "the evidence is about hash_mem_multiplier, not work_mem" in check.reasons
    assert verify(
        "The default hash_mem_multiplier is 2.0.", neighbour, "default hash_mem_multiplier?", context=about
    ).ok
    own = "Resource Consumption > 20.4.1. Memory > work_mem (integer)"
    assert verify("The default work_mem is 4MB.", "The default value is four megabytes (4MB).", context=own).ok
    # A section that names no identifier (a card, a chapter) asks nothing of the sentence.
    assert verify("The default work_mem is 2.0.", neighbour, "What's the default work_mem?", context="Memory").ok


def test_it_knows_when_the_model_says_the_documents_do_not_answer():
    assert abstains("The documents do not say.") and abstains("This is not mentioned in the passages.")
    assert not abstains("The fee is 95 euros.") and negated("There is no fee.")
