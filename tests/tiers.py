"""The fast tier (`make test-fast`: -m "not slow and not browser") guards
itself. A test that uses a real model (the embedder, a generator, the
toxicity classifier) is `slow`:

- a test using a shared fixture that ingests through the real embedder is
  marked slow at collection (MODEL_FIXTURES), so those cannot drift;
- a test not marked slow that calls a real model fails, naming the model;
- a run with no slow test fails if a model library was imported at all.

Hooked in by tests/conftest.py."""

import sys

import pytest

# Shared fixtures (tests/conftest.py) that ingest a document, which embeds it.
MODEL_FIXTURES = frozenset({"handbook", "private_note"})
# What only a real model brings into the process.
MODEL_LIBRARIES = ("torch", "sentence_transformers", "transformers", "cyllama", "llama_cpp", "profanity_check")
_FAST = pytest.StashKey[bool]()  # this run selected no slow test
_LOADED = pytest.StashKey[list]()  # the model libraries such a run imported


def _model_entry_points():
    """(class, method): every real model is loaded or used through one of these."""
    from generation import guardrails
    from generation.engines.llamacpp import LlamaCppEngine
    from generation.engines.llamacpp_batched import BatchedLlamaCppEngine
    from generation.engines.transformers_engine import TransformersEngine
    from retrieval.embedding import SentenceTransformerEmbedder
    from retrieval.reranker import CrossEncoderReranker

    return (
        (SentenceTransformerEmbedder, "warm_up"),
        (CrossEncoderReranker, "warm_up"),
        (LlamaCppEngine, "warm_up"),
        (BatchedLlamaCppEngine, "warm_up"),
        (TransformersEngine, "warm_up"),
        (guardrails.ProfanityCheckClassifier, "score"),
        (guardrails.TransformersToxicityClassifier, "_load"),
    )


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _models_only_in_slow_tests(request, monkeypatch):
    if request.node.get_closest_marker("slow"):
        yield
        return
    used = set()
    for cls, name in _model_entry_points():
        monkeypatch.setattr(cls, name, _recording(getattr(cls, name), f"{cls.__name__}.{name}", used))
    yield
    if used:
        pytest.fail(
            f"uses a real model ({', '.join(sorted(used))}) but is not marked slow: "
            "add @pytest.mark.slow, or give it a fake",
            pytrace=False,
        )


def _recording(method, label, used):
    def recording(self, *args, **kwargs):
        used.add(label)
        return method(self, *args, **kwargs)

    return recording


def pytest_collection_finish(session):
    session.config.stash[_FAST] = bool(session.items) and not any(
        item.get_closest_marker("slow") for item in session.items
    )


def pytest_sessionfinish(session):
    loaded = [name for name in MODEL_LIBRARIES if name in sys.modules]
    if session.config.stash.get(_FAST, False) and loaded:
        session.config.stash[_LOADED] = loaded
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    loaded = config.stash.get(_LOADED, None)
    if loaded:
        terminalreporter.write_line(
            f"FAILED fast tier: no slow test ran, yet the run imported {', '.join(loaded)} "
            "(a test, or a module it imports, brings in a model library without the slow marker)",
            red=True,
        )
