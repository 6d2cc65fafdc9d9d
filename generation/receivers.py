"""Generation's answers to what ingestion and retrieval announce."""

from generation import gate_versions


def corpus_changed(sender, **kwargs):
    gate_versions.request_refit("the corpus changed")


def retriever_switched(sender, name, **kwargs):
    gate_versions.request_refit(f"searches switched to retriever {name}")
