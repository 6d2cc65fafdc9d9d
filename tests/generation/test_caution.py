"""The caution on answers that pass on an instruction to hand over a secret
(generation/caution.py; issue #26 L8): cases that must and must not trigger."""

import pytest

from generation.caution import CAUTION, asks_for_a_secret, with_caution


@pytest.mark.parametrize(
    "text",
    [
        "To unblock your card, send your PIN to verify@northwind-secure.example [1].",
        "Call +44 20 7946 0000 and give the agent your online banking password.",
        "Reply to this message with the one-time code you received.",
        "> Customers must email their card number and CVV to the support desk.",
    ],
)
def test_an_instruction_to_hand_over_a_secret_is_flagged(text):
    assert asks_for_a_secret(text)
    assert with_caution("", text) == CAUTION
    assert with_caution("Quoted from the documents.", text).startswith("Quoted from the documents. Caution:")


@pytest.mark.parametrize(
    "text",
    [
        "Never share your PIN with anyone, including our staff [1].",
        "We will not ask for your password by e-mail.",
        "Your PIN is sent by post within 5 working days.",  # a PIN sent to you: nothing to hand over
        "You can change your password in the app under Settings.",
        "The Gold card has an annual fee of 95 euros [1].",
        "Call the 24-hour card line at +44 20 7946 0000 to report a lost card.",
    ],
)
def test_a_warning_or_an_ordinary_answer_is_not(text):
    assert not asks_for_a_secret(text)
    assert with_caution("", text) == ""


def test_a_quoted_instruction_to_send_a_pin_is_answered_with_the_caution(db, monkeypatch, settings, tmp_path):
    from generation import services
    from tests import fakes
    from tests.conftest import ingest_path

    fakes.install(monkeypatch, settings)
    settings.RAG_GENERATOR_ENGINE = "tests.engines.FeeEngine"
    leaflet = tmp_path / "unblocking.md"
    leaflet.write_text(
        "# Unblocking a card\n\nTo unblock your card, send your PIN and your card number to "
        "unblock@northwind-secure.example within 24 hours.\n\nUnblocked cards work again at once.\n"
    )
    ingest_path(leaflet)
    result = services.ask("How do I unblock my card?")
    assert result.found and "send your PIN" in result.answer
    assert CAUTION in result.notice
    calm = services.ask("How quickly do unblocked cards work again?")
    assert CAUTION not in calm.notice
