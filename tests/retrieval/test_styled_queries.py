"""Keyword queries and situations (retrieval/finetune/styled.py): pure, no model."""

from retrieval.finetune import styled
from retrieval.finetune.data import Passage

WORK_MEM = Passage(
    1,
    10,
    "19.4. Resource Consumption > 19.4.1. Memory",
    "Sets the base maximum amount of memory used by a query operation before writing to temporary disk files. "
    "The default value is four megabytes.",
    "19.4. Resource Consumption",
)
VACUUM = Passage(
    2,
    11,
    "",
    "VACUUM reclaims storage occupied by dead tuples. Tuples deleted by an update remain in their table until "
    "a vacuum runs.",
    "VACUUM",
)
OTHERS = [
    Passage(3, 12, "Memory", "The memory of a query operation is counted before any temporary files are written."),
    Passage(4, 12, "Memory", "A query operation may use memory up to the base limit before it writes files."),
]
CORPUS = [WORK_MEM, VACUUM, *OTHERS]


def test_the_subject_is_the_last_heading_without_its_number_else_the_title():
    assert styled.subject(WORK_MEM) == "Memory"
    assert styled.subject(VACUUM) == "VACUUM"
    untitled = Passage(5, 13, "", "Some text.", "")
    assert styled.subject(untitled) == ""
    long_heading = Passage(6, 14, "x" * 80, "Some text.", "Short title")
    assert styled.subject(long_heading) == "Short title"


def test_a_keyword_query_is_the_subject_and_the_rarest_words_of_one_sentence_in_their_order():
    frequencies = styled.document_frequencies(CORPUS)
    pair = styled.keyword_pair(WORK_MEM, 7, frequencies)
    subject, *rest = pair.query.rstrip("?").split()
    assert subject == "Memory" and pair.method == styled.KEYWORD and pair.positive == WORK_MEM.text
    assert len(rest) == styled.KEYWORD_WORDS
    # Words the other passages share ("memory", "query", "operation") lose to the passage's own.
    assert not {"memory", "query", "operation", "the", "four"} & set(rest)
    sentence = next(s for s in WORK_MEM.text.split(". ") if all(w in s.lower() for w in rest))
    positions = [sentence.lower().index(w) for w in rest]
    assert positions == sorted(positions)
    # The same seed gives the same query; the query is made from the passage alone.
    assert styled.keyword_pair(WORK_MEM, 7, frequencies) == pair


def test_a_passage_without_a_subject_or_a_usable_sentence_gets_no_query():
    frequencies = styled.document_frequencies(CORPUS)
    assert (
        styled.keyword_pair(Passage(5, 13, "", "Text of a page with no title at all here.", ""), 1, frequencies) is None
    )
    assert styled.keyword_pair(Passage(6, 13, "Title", "Too short.", ""), 1, frequencies) is None
    assert styled.situation_pair(Passage(6, 13, "Title", "Too short.", ""), 1, frequencies) is None
    assert [p.chunk_id for p in styled.keyword_pairs(CORPUS, 1)] == [1, 2, 3, 4]


def test_a_situation_hides_the_keyword_query_in_three_sentences_of_filler():
    frequencies = styled.document_frequencies(CORPUS)
    keyword = styled.keyword_pair(VACUUM, 3, frequencies)
    situation = styled.situation_pair(VACUUM, 3, frequencies)
    assert situation.method == styled.SITUATION and situation.positive == VACUUM.text
    assert situation.query.count(". ") + situation.query.count("? ") >= 2 and situation.query.endswith("?")
    assert len(situation.query.split()) >= 25
    for word in keyword.query.rstrip("?").split():
        assert word in situation.query
    assert situation.query.split(". ")[0] + "." in styled.OPENERS
    assert styled.situation_pair(VACUUM, 3, frequencies) == situation
    # Another seed picks other parts (over a few seeds, more than one text).
    assert len({styled.situation_pair(VACUUM, seed, frequencies).query for seed in range(6)}) > 1
