"""A caution on answers that pass on an instruction to hand over a secret
(issue #26, L8). A document may tell its reader to send their PIN to an
address, call a number with their password ready, or reply with a one-time
code; quoted faithfully, such a sentence reads as the product's own advice.
An answer whose text asks for that gets a visible caution beside it. A
sentence that warns against it ("never share your PIN") is no such
instruction. Pure.
"""

from __future__ import annotations

import re

from generation.citations import split_sentences, strip_markers
from generation.claims import negated

CAUTION = (
    "Caution: the documents quoted here tell you to hand over a PIN, password or code. Genuine staff and services "
    "do not ask for these; check the request through a contact you already trust before you act on it."
)
_SECRET = re.compile(
    r"\b(?:PINs?|passwords?|passcodes?|pass\s?phrases?|one[- ]time (?:codes?|passwords?)|OTPs?|security codes?|"
    r"CVV|CVC|card numbers?|login details|credentials|recovery (?:codes?|phrases?)|seed phrases?)\b",
    re.I,
)
_VERBS = (
    r"send|e-?mail|give|tell|share|text|forward|provide|submit|reply|read (?:out|back)|disclose|post|"
    r"call|phone|transfer|confirm|verify|enter|type"
)
# A handover verb said as an instruction: opening the sentence or a clause,
# or after a word that makes it one ("must send", "please give", "and tell").
_INSTRUCTION = re.compile(
    rf"(?:^|[,;:]\s*|\b(?:please|must|should|need to|needs to|have to|has to|required to|asked to|and|then|or)\s+)"
    rf"(?:{_VERBS})\b",
    re.I,
)
_LEAD = re.compile(r"^[\s>*\-\u2022\"'\u201c]+|^\d{1,2}[.)]\s+")


def asks_for_a_secret(text: str) -> bool:
    """Whether a sentence of `text` tells its reader to hand over a secret."""
    plain, _ = strip_markers(text)
    for start, end in split_sentences(plain):
        sentence = _LEAD.sub("", plain[start:end])
        if _SECRET.search(sentence) and _INSTRUCTION.search(sentence) and not negated(sentence):
            return True
    return False


def with_caution(notice: str, answer: str) -> str:
    """The answer's notice, with CAUTION when the answer asks for a secret."""
    if not asks_for_a_secret(answer):
        return notice
    return f"{notice} {CAUTION}".strip() if notice else CAUTION
