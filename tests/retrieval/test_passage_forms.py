"""Contextual passages (issue #15, item 1): passages are embedded and
BM25-indexed with their document title and heading path; the passage shown
stays the text; an index made before keeps its form until a switch moves it
over in the background."""

import json

import pytest
from django.core.management import call_command

from retrieval import passage_forms, stores
from retrieval.search import search
from tests.conftest import ingest_path

# The title names what the passage never says itself.
GUIDE = "## Luggage\n\nEach passenger may bring two bags of at most 20 kg each.\n"


def test_a_passage_is_read_with_where_it_sits():
    assert (
        passage_forms.read(passage_forms.CONTEXTUAL, "Two bags.", "Ferry rules", "Luggage")
        == "Ferry rules > Luggage\nTwo bags."
    )
    assert passage_forms.read(passage_forms.CONTEXTUAL, "Two bags.", "", " ") == "Two bags."
    assert passage_forms.read(passage_forms.TEXT, "Two bags.", "Ferry rules", "Luggage") == "Two bags."
    with pytest.raises(ValueError, match="Unknown passage form"):
        passage_forms.read("summary", "Two bags.")


@pytest.fixture
def guide(db, tmp_path, settings):
    settings.RAG_INDEX_DIR = tmp_path / "index"

    def ingest():
        path = tmp_path / "Zanzibar ferry rules.md"
        path.write_text(GUIDE)
        return ingest_path(path)

    return ingest


def _bm25_finds(query):
    return [h.text for h in search(query, k=3, methods=["bm25"])]


@pytest.mark.slow
def test_new_indexes_read_passages_in_context_and_show_the_text(guide):
    document = guide()
    assert not any("zanzibar" in c.text.lower() for c in document.chunks.all())  # the title is in no passage
    hits = search("zanzibar baggage", k=3)
    assert hits and "Each passenger" in hits[0].text and hits[0].title.lower().startswith("zanzibar")
    assert _bm25_finds("zanzibar") == [hits[0].text]  # found by its title's word
    state = stores.registry().state()
    assert state["active"]["form"] == passage_forms.CONTEXTUAL  # recorded with the first write
    manifest = json.loads((stores.get_store().folder / "manifest.json").read_text())
    assert manifest["form"] == passage_forms.CONTEXTUAL and stores.get_store().folder.name == "base-contextual"


@pytest.mark.slow
def test_an_index_made_before_keeps_its_form_until_a_switch_moves_it(guide, settings, capsys):
    settings.RAG_PASSAGE_FORM = passage_forms.TEXT
    guide()  # an install from before contextual passages
    assert _bm25_finds("zanzibar") == []
    old = stores.get_store()
    assert old.folder.name == "base" and stores.active_retriever()["form"] == passage_forms.TEXT
    settings.RAG_PASSAGE_FORM = passage_forms.CONTEXTUAL  # the new default: searches stay on the index that exists
    assert stores.get_store().folder == old.folder and _bm25_finds("zanzibar") == []

    call_command("rebuild_index", "--form", "contextual")
    assert "Searches now use base with contextual passages (1 vectors)" in capsys.readouterr().out
    assert stores.active_retriever()["form"] == passage_forms.CONTEXTUAL
    assert stores.get_store().folder.name == "base-contextual"
    assert _bm25_finds("zanzibar") == [_bm25_finds("passenger bags")[0]]
    assert old.current().ntotal == 1  # the old index is left as it was (a rollback is a switch back)

    call_command("rebuild_index", "--form", "text")
    assert stores.get_store().folder == old.folder and _bm25_finds("zanzibar") == []
