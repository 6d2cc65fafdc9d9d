"""Continuous batching on the CPU path (generation/engines/llamacpp_batched.py),
on the packaged GGUF: concurrent answers are decoded together and each gets
the tokens it gets alone; stop sequences, budgets and consumers that stop
reading free their sequence."""

import threading

import pytest
from django.conf import settings as django_settings

from generation.engines.base import generate
from generation.engines.llamacpp_batched import BatchedLlamaCppEngine

pytestmark = pytest.mark.slow

QUESTIONS = [
    "Write three sentences about the sea.",
    "What is the capital of France? Explain.",
    "List four fruits.",
    "Describe a cat in two sentences.",
    "How do trains work?",
]
SYSTEM = {"role": "system", "content": "You answer briefly and only from what you know for certain." * 3}


def messages(question):
    return [SYSTEM, {"role": "user", "content": question}]


@pytest.fixture(scope="module")
def engine():
    return BatchedLlamaCppEngine(django_settings.RAG_GENERATOR_MODEL, 1024, slots=3)


def test_concurrent_answers_are_decoded_together_and_each_is_what_it_is_alone(engine):
    alone = [generate(engine, messages(q), max_new_tokens=40) for q in QUESTIONS]
    assert all(alone) and len(set(alone)) == len(alone)
    widest_alone = engine.widest
    assert widest_alone == 1

    together = [None] * len(QUESTIONS)
    start = threading.Barrier(len(QUESTIONS))

    def ask(i):
        start.wait()
        together[i] = generate(engine, messages(QUESTIONS[i]), max_new_tokens=40)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUESTIONS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert together == alone  # five requests on three sequences: two waited for a free one
    assert engine.widest == 3


def test_a_prompt_reuses_the_cache_of_the_slot_sharing_most_of_it(engine):
    generate(engine, messages(QUESTIONS[0]), max_new_tokens=4)
    generate(engine, messages(QUESTIONS[1]), max_new_tokens=4)
    assert engine.reused > 30  # the shared system prompt was not computed again, whichever slot was free


def test_stop_sequences_and_budgets_end_an_answer(engine):
    full = generate(engine, messages(QUESTIONS[2]), max_new_tokens=40)
    assert "\n" in full
    first_line = generate(engine, messages(QUESTIONS[2]), max_new_tokens=40, stop=["\n"])
    assert first_line == full.split("\n")[0]
    short = "".join(engine.stream(messages(QUESTIONS[0]), max_new_tokens=3))
    assert short and full != short and engine.count_tokens(short) <= 4


def test_a_consumer_that_stops_reading_frees_its_sequence(engine):
    readers = [engine.stream(messages(q), max_new_tokens=60) for q in QUESTIONS[:3]]
    for reader in readers:
        next(reader)  # every sequence is taken
    for reader in readers:
        reader.close()  # the clients went away
    # Were the three sequences still held, this would wait for ever.
    done = []
    thread = threading.Thread(target=lambda: done.append(generate(engine, messages(QUESTIONS[3]), max_new_tokens=8)))
    thread.start()
    thread.join(timeout=60)
    assert done and done[0]


def test_a_prompt_longer_than_the_context_is_refused_clearly(engine):
    from generation.engines.base import GeneratorUnavailable

    with pytest.raises(GeneratorUnavailable, match="does not fit"):
        generate(engine, messages("word " * 1500), max_new_tokens=8)
