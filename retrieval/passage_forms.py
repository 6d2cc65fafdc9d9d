"""How the retrievers read a passage. Pure: no Django.

- "contextual": the document's title and the passage's heading path, then
  its text. A passage of a reference page ("The default is 4MB.") says what
  it is about only through where it sits; read with its title and heading it
  is found by questions about that ("default work_mem"). The reranker reads
  passages this way too (retrieval/finetune/cross_encoder.py).
- "text": the text alone, as indexes made before contextual passages hold it.

The passage shown, quoted and cited is always the text; only what is
embedded and BM25-indexed changes. An index records its form (the index
registry, retrieval/stores.py); an index moves from one form to the other
through the retriever switch (a new index built in the background, switched
in atomically: retrieval/versions.switch_retriever).
"""

from __future__ import annotations

TEXT, CONTEXTUAL = "text", "contextual"
FORMS = (TEXT, CONTEXTUAL)


def passage_text(text: str, title: str = "", heading: str = "") -> str:
    """The passage with where it sits in front: "title > heading", then the text."""
    where = " > ".join(part for part in (title, heading) if part and part.strip())
    return f"{where}\n{text}" if where else text


def read(form: str, text: str, title: str = "", heading: str = "") -> str:
    """What an index of `form` embeds and BM25-indexes for a passage."""
    if form == CONTEXTUAL:
        return passage_text(text, title, heading)
    if form == TEXT:
        return text
    raise ValueError(f"Unknown passage form {form!r}: {', '.join(FORMS)}")
