"""Identifiers a question names (generation/identifiers.py) and the not-found answer that names them."""

from generation import identifiers, policy


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


def test_the_answer_says_what_the_documents_do_not_mention():
    assert policy.not_found_answer() == policy.NOT_FOUND_ANSWER
    assert policy.not_found_answer(("io_method", "io_uring"), closest=True) == (
        "The documents do not mention io_method or io_uring, so they do not answer that. "
        "The closest passages are listed below."
    )
    assert policy.not_found_answer(lacks="default") == "The documents do not state the default value you asked for."
    assert policy.not_found_answer(("io_method",), lacks="default").startswith("The documents do not mention io_method")
