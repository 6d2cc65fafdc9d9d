"""Hybrid search (dense + BM25, fused) through retrieval.search, on really
ingested documents: the real embedder, FAISS and BM25 indexes."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured

from retrieval import access, indexing
from retrieval.search import search
from retrieval.stores import get_store
from tests.conftest import ingest_path

pytestmark = pytest.mark.slow  # the real embedder, in every test

PARTS = {
    # Codes that look like the one asked for, in passages about parts: dense
    # retrieval ranks these first for "ZX-4471"; none shares a term with it.
    "seals.md": "# Seal catalogue\n\nQX-4417 shaft seal for the ZQ pumps. ZK-4470 O-ring kit. XZ-7441 lip seal.\n",
    "valves.md": "# Valve parts\n\nZQ-4174 valve stem. QZ-1447 valve seat. KX-4714 handle.\n",
    "bearings.md": "# Bearing catalogue\n\nBX-4741 ball bearing 6204. ZB-1744 needle bearing. XB-4147 thrust washer.\n",
    "filters.md": "# Filter cartridges\n\nFX-4411 sediment filter. ZF-7471 carbon block filter. XF-1474 membrane.\n",
    # The one passage that names ZX-4471, in a note about something else.
    "dock-notes.md": (
        "# Loading dock notes\n\nThe loading dock door was serviced last spring and the forklift charging bay was "
        "repainted. Facilities replaced the door's hinge with ZX-4471 from the usual supplier.\n"
    ),
}


@pytest.fixture
def parts(db, tmp_path, settings):
    # Passages read alone (the text form): these tests are about what BM25
    # finds that dense retrieval misses, and "Loading dock notes" in front of
    # the note would bring it closer to a part number for the embedder.
    settings.RAG_PASSAGE_FORM = "text"
    folder = tmp_path / "parts"
    folder.mkdir()
    documents = {}
    for name, text in PARTS.items():
        (folder / name).write_text(text)
        documents[name] = ingest_path(folder / name)
    return documents


def filenames(hits) -> list[str]:
    return [hit.filename for hit in hits]


def test_it_finds_an_exact_part_number_that_dense_search_misses(parts):
    dense = search("ZX-4471", k=3, methods=["dense"])
    assert "dock-notes.md" not in filenames(dense)
    hybrid = search("ZX-4471", k=3)
    assert filenames(hybrid)[0] == "dock-notes.md"
    top = hybrid[0]
    assert top.scores["bm25"] > 0 and top.scores["rrf"] > 0
    # The score stays a cosine similarity: read back from the chunk's vector.
    assert top.score == top.scores["dense"] and -1 <= top.score <= 1
    assert [h.rank for h in hybrid] == [1, 2, 3]


def test_it_searches_with_bm25_alone_or_dense_alone_as_settings_say(parts, settings):
    settings.RAG_SEARCH_BM25 = False
    assert "dock-notes.md" not in filenames(search("ZX-4471", k=3))
    assert all(hit.scores["bm25"] is None for hit in search("ZX-4471", k=3))
    settings.RAG_SEARCH_BM25, settings.RAG_SEARCH_DENSE = True, False
    only_bm25 = search("ZX-4471", k=3)
    assert filenames(only_bm25) == ["dock-notes.md"]  # no other passage shares a term with the query
    assert only_bm25[0].score == pytest.approx(search("ZX-4471", k=5, methods=["dense"])[3].score)
    assert search("forklift charging", k=3)[0].filename == "dock-notes.md"
    settings.RAG_SEARCH_BM25, settings.RAG_SEARCH_DENSE = False, True
    hits = search("ball bearing", k=5)  # dense alone: ranked by cosine, as before hybrid search
    assert hits[0].filename == "bearings.md"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    settings.RAG_SEARCH_DENSE = False
    settings.RAG_SEARCH_BM25 = False
    with pytest.raises(ImproperlyConfigured):
        search("ZX-4471")


def test_it_never_shows_a_private_collection_through_bm25(private_note, alice, bob, tmp_path):
    query = "Project Falcon Diamond card"
    for methods in (["bm25"], ["dense", "bm25"]):
        assert search(query, user=bob, methods=methods) == []
        assert search(query, user=AnonymousUser(), methods=methods) == []
        mine = search(query, user=alice, methods=methods)
        assert mine and {h.collection for h in mine} == {"alice-private"} and mine[0].scores["bm25"] > 0
    # What bob may read is still searched by BM25 (the filter narrows, it does not switch BM25 off).
    (tmp_path / "falcon.md").write_text("# Falcon\n\nThe falcon is the fastest bird.\n")
    public = ingest_path(tmp_path / "falcon.md")
    hits = search(query, user=bob, methods=["bm25"])
    assert {h.document_id for h in hits} == {public.pk}


def test_deleting_a_document_removes_its_bm25_entries(parts, django_capture_on_commit_callbacks, eager_tasks):
    document = parts["dock-notes.md"]
    chunk_ids = set(document.chunks.values_list("pk", flat=True))
    store = get_store()
    assert chunk_ids <= set(store.current_bm25().ids().tolist())
    with django_capture_on_commit_callbacks(execute=True):
        document.delete()
    assert not chunk_ids & set(store.current_bm25().ids().tolist())
    assert not chunk_ids & set(store.current().ids().tolist())
    assert set(store.current_bm25().ids().tolist()) == set(store.current().ids().tolist())
    assert store.current_bm25().search("ZX-4471", 5)[1].size == 0
    assert search("ZX-4471", k=3, methods=["bm25"]) == []


def test_rebuild_index_restores_bm25(parts):
    store = get_store()
    before = sorted(store.current_bm25().ids().tolist())
    with store.write(fresh=True):
        pass  # a lost index
    assert store.current_bm25().ntotal == 0
    assert indexing.rebuild_index() == len(before)
    assert sorted(store.current_bm25().ids().tolist()) == before
    assert filenames(search("ZX-4471", k=1, methods=["bm25"])) == ["dock-notes.md"]


def test_the_access_filter_asks_the_database_about_documents_not_each_candidate(parts, django_assert_max_num_queries):
    search("warm up", k=3)  # reads the chunk -> document map once
    with django_assert_max_num_queries(3):  # collections, the candidates' documents, the final rows
        assert filenames(search("ZX-4471", k=5))[0] == "dock-notes.md"


def test_chunks_indexed_after_the_map_was_read_are_found(parts, tmp_path):
    assert search("Kestrel telemetry", k=3, methods=["bm25"]) == []  # the map is read up to this index version
    (tmp_path / "kestrel.md").write_text("# Kestrel\n\nKestrel telemetry uplink runs on band C.\n")
    ingest_path(tmp_path / "kestrel.md")
    assert filenames(search("Kestrel telemetry", k=3, methods=["bm25"])) == ["kestrel.md"]
    owners = access.chunk_owners(get_store(), get_store().current())
    assert all(pk in dict(owners.lookup([pk])[0]) for pk in get_store().current().ids().tolist())


def test_a_wrong_owner_in_the_map_never_shows_a_private_chunk(private_note, parts, bob):
    # Even if the map said a private chunk belonged to a public document,
    # the final rows are checked against their own documents.
    query = "Project Falcon Diamond card"
    assert search(query, user=bob, methods=["bm25"]) == []
    store = get_store()
    owners = access.chunk_owners(store, store.current())
    ids, documents = owners._pairs
    public = parts["dock-notes.md"].pk
    owners._pairs = (ids, documents.copy())
    owners._pairs[1][:] = public  # every chunk "belongs" to a public document
    assert search(query, user=bob, methods=["bm25"]) == []
    assert all(hit.filename in PARTS for hit in search(query, user=bob, k=10))
