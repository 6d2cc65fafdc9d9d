"""A BM25 index keyed by chunk primary keys, on `bm25s`. Pure: no Django.

bm25s builds its score matrix from a whole corpus; it cannot add or remove
one document. So this index keeps the tokenised corpus (chunk id -> tokens)
as the master copy and rebuilds the bm25s matrix from it when the corpus has
changed (on save, or on the first search after a change). Writes happen in
the single writer of retrieval/snapshots.py, so the rebuild is paid once per
write, never per query; readers load the built matrix as it was saved.

A snapshot is a folder:

    corpus.npz     ids (int64, in row order), offsets, token_ids, vocab
                   (the vocabulary as UTF-8 text, one token a line): the
                   tokenised corpus, read by the next writer
    meta.json      format, tokenizer, ntotal: checked on load
    *.index.npy, vocab.index.json, params.index.json
                   bm25s's own save of the built matrix, read by readers

No pickle anywhere: numpy arrays are loaded with allow_pickle=False.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from retrieval.postings import Postings

log = logging.getLogger(__name__)

FORMAT = 1
# Recorded in every snapshot: tokens made by another tokenizer would not match
# the queries' tokens, so such a snapshot is refused (rebuild the index).
TOKENIZER = "bm25s-word2+en-stopwords+s-stemmer/1"
_ALPHA = re.compile(r"[a-z]+")


def s_stem(word: str) -> str:
    """Harman's S-stemmer: folds English plurals ("policies" -> "policy",
    "cards" -> "card") and nothing else. bm25s has no stemmer of its own (it
    calls PyStemmer, which is not a dependency here); this one is tiny,
    deterministic and needs no data files."""
    if len(word) <= 3 or not _ALPHA.fullmatch(word):
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def _stem_words(words: list[str]) -> list[str]:
    return [s_stem(w) for w in words]


def tokenize(texts: list[str]) -> list[list[str]]:
    """bm25s's tokenizer (lower case, words of 2+ word characters, English
    stopwords removed) with the S-stemmer. "ZX-4471" -> ["zx", "4471"]."""
    if not texts:
        return []
    return _bm25s().tokenize(
        list(texts), lower=True, stopwords="en", stemmer=_stem_words, return_ids=False, show_progress=False
    )


class BM25Index:
    def __init__(self):
        self._tokens: dict[int, list[str]] = {}  # the master copy, in row order
        self._ids = np.zeros(0, dtype=np.int64)  # row -> chunk id of the built matrix
        self._engine = None  # bm25s.BM25 built from exactly self._ids' rows
        self._postings = None  # Postings of self._engine, made on the first search
        self._tokens_loaded = True
        self._source: Path | None = None  # snapshot to read tokens from on first write
        self.dirty = False  # changed since loaded (the store writes a new snapshot only then)

    # -- writes -----------------------------------------------------------
    def add(self, ids, texts: list[str]) -> None:
        ids = [int(i) for i in ids]
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        self.add_tokens(ids, tokenize(texts))

    def add_tokens(self, ids, tokens: list[list[str]]) -> None:
        """Re-adding an id replaces its tokens (idempotent writes)."""
        ids = [int(i) for i in ids]
        if len(ids) != len(tokens):
            raise ValueError("ids and token lists differ in length")
        if not ids:
            return
        corpus = self._corpus()
        for pk, toks in zip(ids, tokens):
            corpus.pop(pk, None)  # a replaced id moves to the end, like FAISS
            corpus[pk] = list(toks)
        self._changed()

    def remove(self, ids) -> int:
        corpus = self._corpus()
        removed = sum(corpus.pop(int(pk), None) is not None for pk in ids)
        if removed:
            self._changed()
        return removed

    def _changed(self) -> None:
        self._engine = None
        self._ids = None  # recomputed on use: batches of adds stay linear
        self.dirty = True

    @property
    def _rows(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.fromiter(self._tokens.keys(), dtype=np.int64, count=len(self._tokens))
        return self._ids

    # -- reads --------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return len(self._rows)

    def ids(self) -> np.ndarray:
        return self._rows.copy()

    def contains(self, ids) -> set[int]:
        """Those of `ids` the index holds."""
        return set(np.intersect1d(self._rows, np.asarray(list(ids), dtype=np.int64)).tolist())

    def tokens(self, chunk_id: int) -> list[str]:
        return list(self._corpus()[int(chunk_id)])

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the best k chunks, best first; only chunks that
        share a term with the query (score > 0), so fewer than k may come back."""
        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        if self.ntotal == 0 or k <= 0:
            return empty
        engine = self._built()
        term_ids = engine.get_tokens_ids(tokenize([query])[0])
        if not term_ids:
            return empty
        if self._postings is None or self._postings.engine is not engine:
            self._postings = Postings(engine)
        rows, scores = self._postings.top(term_ids, k)
        return scores, self._rows[rows]

    def document_frequency(self, words: list[str]) -> dict[str, int]:
        """How many passages hold each word (tokenised as queries are; a word
        that tokenises to nothing, such as a stopword, counts 0)."""
        if self.ntotal == 0:
            return {word: 0 for word in words}
        engine = self._built()
        indptr, vocab = engine.scores["indptr"], engine.vocab_dict
        counts = {}
        for word, tokens in zip(words, tokenize(list(words))):
            column = vocab.get(tokens[0]) if tokens else None
            counts[word] = 0 if column is None else int(indptr[column + 1] - indptr[column])
        return counts

    def _built(self):
        if self._engine is None:
            engine = _bm25s().BM25()
            engine.index([self._tokens[pk] for pk in self._rows.tolist()], show_progress=False)
            self._engine = engine
        return self._engine

    def _corpus(self) -> dict[int, list[str]]:
        if not self._tokens_loaded:
            self._tokens = _read_corpus(self._source)
            self._tokens_loaded = True
            if list(self._tokens) != self._rows.tolist():
                raise ValueError(f"BM25 snapshot {self._source}: corpus and index rows disagree")
        return self._tokens

    # -- persistence ----------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write a snapshot into `folder`, which must not exist yet. It is
        written beside it under a temporary name and renamed into place, so a
        reader never sees half a snapshot."""
        folder = Path(folder)
        if folder.exists():
            raise FileExistsError(folder)
        corpus = self._corpus()
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        _remove_tree(tmp)
        tmp.mkdir(parents=True)
        try:
            if self.ntotal:
                self._built().save(str(tmp), show_progress=False)
            _write_corpus(tmp / "corpus.npz", self._rows, corpus)
            (tmp / "meta.json").write_text(
                json.dumps({"format": FORMAT, "tokenizer": TOKENIZER, "ntotal": self.ntotal})
            )
            for path in tmp.iterdir():
                _fsync(path)
            os.rename(tmp, folder)
            _fsync(folder.parent)
        except BaseException:
            _remove_tree(tmp)
            raise

    @classmethod
    def load(cls, folder: str | Path, for_writing: bool = False) -> BM25Index:
        """Readers get the built matrix (eagerly, so a later pruning of the
        folder cannot break them); writers get the token lists instead."""
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("tokenizer") != TOKENIZER:
            raise ValueError(
                f"BM25 snapshot {folder} was made by another tokenizer or format ({meta}); rebuild the index"
            )
        index = cls()
        with np.load(folder / "corpus.npz", allow_pickle=False) as data:
            index._ids = data["ids"].astype(np.int64)
        if len(index._ids) != meta["ntotal"]:
            raise ValueError(
                f"BM25 snapshot {folder} does not match its metadata ({len(index._ids)} vs {meta['ntotal']} rows)"
            )
        if for_writing:
            index._tokens = _read_corpus(folder)
            if list(index._tokens) != index._ids.tolist():
                raise ValueError(f"BM25 snapshot {folder}: corpus and index rows disagree")
        else:
            index._tokens_loaded = False
            index._source = folder
            if index.ntotal:
                index._engine = _bm25s().BM25.load(str(folder), show_progress=False, allow_pickle=False)
                if index._engine.scores["num_docs"] != index.ntotal:
                    raise ValueError(
                        f"BM25 snapshot {folder}: the matrix has {index._engine.scores['num_docs']} rows, not {index.ntotal}"
                    )
        return index


def _write_corpus(path: Path, ids: np.ndarray, corpus: dict[int, list[str]]) -> None:
    vocab: dict[str, int] = {}
    lengths, token_ids = [], []
    for pk in ids.tolist():
        toks = corpus[pk]
        lengths.append(len(toks))
        token_ids.extend(vocab.setdefault(t, len(vocab)) for t in toks)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # Tokens are runs of word characters, so a newline never occurs inside one.
    vocab_bytes = np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as out:
        np.savez(
            out,
            ids=ids.astype(np.int64),
            offsets=offsets,
            token_ids=np.asarray(token_ids, dtype=np.int32),
            vocab=vocab_bytes,
        )


def _read_corpus(folder: Path) -> dict[int, list[str]]:
    with np.load(folder / "corpus.npz", allow_pickle=False) as data:
        ids, offsets, token_ids = data["ids"], data["offsets"], data["token_ids"]
        text = data["vocab"].tobytes().decode("utf-8")
    vocab = text.split("\n") if text else []
    words = [vocab[t] for t in token_ids.tolist()]
    bounds = offsets.tolist()
    return {int(pk): words[bounds[row] : bounds[row + 1]] for row, pk in enumerate(ids.tolist())}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _bm25s():
    """bm25s, imported lazily; it sets its logger to DEBUG on import, which
    would print every index build through the root handler."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s
