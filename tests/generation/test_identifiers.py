"""Identifiers a question names, and the gate's use of them (generation/identifiers.py, gathering.settles)."""

from generation import evidence, identifiers, policy


def test_it_finds_underscored_identifiers_only_once_each_in_lower_case():
    question = "Is Work_Mem per sort? And work_mem vs maintenance_work_mem, pg_hba.conf, ZX4471, pg15, --wal-segsize"
    assert identifiers.named(question) == ("work_mem", "maintenance_work_mem", "pg_hba")
    assert identifiers.named("What's the annual fee of the Gold card?") == ()


def test_a_mention_is_the_whole_identifier():
    assert identifiers.mentions("work_mem (integer) Sets the base maximum", "work_mem")
    assert not identifiers.mentions("maintenance_work_mem (integer)", "work_mem")
    assert not identifiers.mentions("work_mem_limit is another setting", "work_mem")
    texts = ["The default work_mem is 4MB.", "temp_buffers sets the maximum"]
    assert identifiers.unmentioned(("work_mem", "innodb_buffer_pool_size"), texts) == ("innodb_buffer_pool_size",)


def unit(score, text, heading=""):
    return evidence.Unit(
        passage=0,
        start=0,
        end=len(text),
        context_start=0,
        context_end=len(text),
        text=text,
        heading=heading,
        score=score,
    )


def test_evidence_that_names_the_identifier_is_judged_on_its_score_alone():
    gate = {"threshold": 0.46, "gap": 0.08, "clear": 0.6, "named_threshold": 0.4}
    # Two units scoring alike: the runner-up test declines ...
    alike = [unit(0.5, "The default is 3."), unit(0.49, "The default is 5.")]
    assert not evidence.settles(alike, **gate)
    assert not evidence.settles(alike, names=("superuser_reserved_connections",), **gate)
    # ... unless the best one is about the setting the question names (in its text or heading).
    named = [unit(0.5, "The default is 3.", heading="superuser_reserved_connections"), alike[1]]
    assert evidence.settles(named, names=("superuser_reserved_connections",), **gate)
    low = [unit(0.39, "superuser_reserved_connections: the default is 3.")]
    assert not evidence.settles(low, names=("superuser_reserved_connections",), **gate)


def test_the_answer_says_what_the_documents_do_not_mention():
    assert policy.not_found_answer() == policy.NOT_FOUND_ANSWER
    assert policy.not_found_answer(("io_method", "io_uring"), closest=True) == (
        "The documents do not mention io_method or io_uring, so they do not answer that. "
        "The closest passages are listed below."
    )
