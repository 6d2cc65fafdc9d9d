"""A question longer than the encoder's window is encoded in overlapping
windows and their vectors averaged, instead of being cut at the window
(issue #15 item 2): what a customer writes at the end of a long message counts."""

import numpy as np
import pytest
from django.conf import settings

from retrieval.embedding import SentenceTransformerEmbedder, window_spans


def test_windows_cover_the_whole_question_and_overlap():
    offsets = [(i * 4, i * 4 + 3) for i in range(10)]  # ten tokens of three characters and a space
    assert window_spans(offsets, 10, 39) == [(0, 39)]  # it fits: the text itself
    spans = window_spans(offsets, 4, 39)
    assert spans[0] == (0, 15) and spans[-1][1] == 39  # from the first token to the last
    assert all(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))  # neighbours overlap
    assert window_spans([], 4, 0) == [(0, 0)]


@pytest.mark.slow
def test_the_end_of_a_long_question_counts():
    embedder = SentenceTransformerEmbedder(settings.RAG_EMBEDDER_PATH, "cpu", dtype="float32")
    story = "We moved house in the spring and spent weeks unpacking boxes and painting the walls. " * 30
    ask = "My heat pump shows error code E-207: what does it mean?"
    passages = embedder.embed_passages(
        [
            "Error E-207 on the heat pump means the outdoor fan is blocked; clear the fan and restart the unit.",
            "Moving house: label your boxes by room and book the van early.",
        ]
    )
    whole = embedder.embed_queries([story + ask])[0]
    cut = embedder._encode([story + ask], "encode_query")[0]  # what the encoder alone does: cut at the window
    assert passages[0] @ whole > passages[0] @ cut + 0.1  # the question at the end now counts
    short = embedder.embed_queries([ask])[0]  # a question that fits is encoded as before
    np.testing.assert_allclose(short, embedder._encode([ask], "encode_query")[0], atol=1e-6)
