"""The generator's training examples (generation/finetune/examples.py): facts,
cloze questions, examples with the fact among distractors or absent, and the
decision to switch. Pure: no models, no database."""

import random

from generation.finetune import examples as making
from generation.finetune.pipeline import decide_switch
from generation.policy import GENERATED, NOT_FOUND_ANSWER, Item, decide
from generation.prompts import EvidenceLine
from retrieval.finetune.data import Passage

FEES = Passage(
    7,
    3,
    "Fees > Annual fee",
    "Annual fee\nThe Gold card's annual fee is 95 euros. It is waived in the first year.\n"
    "- You can withdraw up to 500 euros per day at cash machines.",
    "Card handbook",
)
DISTRACTORS = [  # (line, document id, chunk id)
    (EvidenceLine("The Silver card costs 30 euros a year.", "Fees"), 4, 40),
    (EvidenceLine("Statements are sent every month.", "Statements"), 5, 50),
    (EvidenceLine("A replacement card costs 95 euros when sent by courier.", "Cards"), 6, 60),  # the fact's number
    (EvidenceLine("Cards are valid for three years.", "Cards"), 4, 41),
    (EvidenceLine("It is waived in the first year.", "Fees > Annual fee"), 3, 7),  # the fact's own passage
]


def fact():
    return making.facts([FEES])[0]


def test_it_takes_the_first_fact_bearing_sentence_with_its_numbers():
    found = making.facts([FEES], per_passage=3)
    assert [f.sentence for f in found] == [
        "The Gold card's annual fee is 95 euros.",
        "You can withdraw up to 500 euros per day at cash machines.",
    ]
    assert found[0].values == ("95",)
    assert (found[0].chunk_id, found[0].document_id, found[0].heading) == (7, 3, "Fees > Annual fee")
    assert making.facts([Passage(1, 1, "", "Nothing here states a number at all.", "")]) == []


def test_it_asks_a_keyword_question_about_the_facts_subject():
    assert making.keyword_question(fact()) == "Annual fee gold card's?"
    setting = making.facts(
        [Passage(1, 1, "", "`work_mem` (`integer`)\nThe default value is 4MB for each operation.", "Resources")]
    )[0]
    assert making.subject(setting) == "work_mem"
    assert making.keyword_question(setting) == "work_mem default value?"
    no_subject = making.facts([Passage(1, 1, "", "The default value is 10 seconds for each.", "Replication")])[0]
    assert making.keyword_question(no_subject) is None  # which setting? nothing says


def test_it_takes_no_reference_or_code_for_a_fact():
    passages = [
        Passage(1, 1, "", "For more information on tablespaces, see Section 23.6 of the manual.", ""),
        Passage(2, 1, "", "SELECT * FROM foo WHERE x = 1 AND y <> 2;", ""),
        Passage(3, 1, "", "PostgreSQL releases before version 7.4 used another format.", ""),
    ]
    assert making.facts(passages) == []


def test_an_answer_example_puts_the_fact_among_distractors_and_cites_its_place():
    question = making.Question("How much is the Gold card's annual fee?", fact(), making.LLM)
    drops = making.Drops()
    seen_positions = set()
    for seed in range(12):
        example = making.arrange(
            question, DISTRACTORS, kind=making.ANSWER, items=3, rng=random.Random(seed), drops=drops
        )
        assert example.kind == making.ANSWER and len(example.evidence) == 3
        assert example.evidence[example.gold].text == fact().text
        assert example.target == f"The Gold card's annual fee is 95 euros [{example.gold + 1}]."
        # No other line holds the fact's number: the replacement card's 95 euros is no distractor.
        assert not any("95" in line.text for i, line in enumerate(example.evidence) if i != example.gold)
        # The answer policy shows the target as generated, cited to the fact.
        shown = decide(example.target, question.text, [Item(line.text, line.heading, 1.0) for line in example.evidence])
        assert shown.kind == GENERATED and shown.cited == [example.gold]
        seen_positions.add(example.gold)
    assert len(seen_positions) > 1  # a random position, not always [1]
    assert drops.as_dict() == {}


def test_an_absent_example_has_no_evidence_holding_the_fact_and_says_so():
    question = making.Question("How much is the Gold card's annual fee?", fact(), making.KEYWORD)
    example = making.arrange(
        question,
        DISTRACTORS + [(fact().line, 3, 7)],
        kind=making.ABSENT,
        items=4,
        rng=random.Random(1),
        drops=making.Drops(),
    )
    assert example.kind == making.ABSENT and example.gold is None
    assert example.target == NOT_FOUND_ANSWER
    assert all(line.text != fact().text and "95" not in line.text for line in example.evidence)
    assert example.document_ids == (4, 5) and 7 not in example.evidence_chunks


def test_it_drops_what_it_cannot_make_and_counts_why():
    drops = making.Drops()
    question = making.Question("What is it?", fact(), making.LLM)
    only_the_fact = [(fact().line, 3, 7)]
    assert (
        making.arrange(question, only_the_fact, kind=making.ABSENT, items=4, rng=random.Random(1), drops=drops) is None
    )
    assert drops.as_dict() == {"absent_without_distractors": 1}


def test_the_absent_share_is_honoured_and_seeded():
    kinds = making.choose_kinds(40, 0.25, seed=3)
    assert kinds.count(making.ABSENT) == 10 and kinds.count(making.ANSWER) == 30
    assert kinds == making.choose_kinds(40, 0.25, seed=3) != making.choose_kinds(40, 0.25, seed=4)


def test_a_version_switches_in_only_when_better_and_no_worse_elsewhere():
    before = {"holds_fact": 0.40, "wrong_cited": 0.10, "abstained": 0.70}
    assert decide_switch(before, {"holds_fact": 0.45, "wrong_cited": 0.10, "abstained": 0.70}, 0.02, "packaged")[
        "better"
    ]
    assert decide_switch(before, {"holds_fact": 0.41, "wrong_cited": 0.10, "abstained": 0.70}, 0.02, "packaged")[
        "reasons"
    ] == ["holds the fact +0.010 (needs +0.020)"]
    worse = decide_switch(before, {"holds_fact": 0.60, "wrong_cited": 0.12, "abstained": 0.60}, 0.02, "v1")
    assert not worse["better"] and len(worse["reasons"]) == 2 and worse["against"] == "v1"


def test_ranked_positions_keep_the_answer_paths_order():
    question = making.Question("How much is the Gold card's annual fee?", fact(), making.LLM)
    arrange = lambda found: making.arrange(  # noqa: E731
        question, found, kind=making.ANSWER, items=3, rng=random.Random(1), drops=making.Drops(), positions="ranked"
    )
    found = [DISTRACTORS[0], (fact().line, 3, 7), DISTRACTORS[1], DISTRACTORS[3]]
    second = arrange(found)
    assert second.gold == 1 and [line.text for line in second.evidence][0] == DISTRACTORS[0][0].text
    missed = arrange([DISTRACTORS[0], DISTRACTORS[1], DISTRACTORS[3]])  # the selection did not pick the fact
    assert missed.gold == 2 and missed.evidence_chunks == (40, 50, 7)
