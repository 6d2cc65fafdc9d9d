"""What a fine-tuning run is given and what it records: its options, the
output of steps 1-3 (retrieval/finetune/pipeline.py), and its progress,
written to the version's row (also the run's heartbeat)."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings

from core.transitions import transition
from retrieval import passage_forms
from retrieval.finetune import evaluate as evaluation
from retrieval.finetune import negatives
from retrieval.finetune.data import Passage, Split
from retrieval.finetune.queries import Pair
from retrieval.models import RetrieverVersion

Progress = Callable[[str, int, int], None]


@dataclass
class Options:
    llm_queries: int
    ict_queries: int
    max_steps: int
    max_minutes: float
    batch_size: int
    seed: int
    heldout_share: float
    min_gain: float
    base_model: str
    switch: bool = True
    reranker: bool = True  # train a reranker beside the embedder
    rerank_share: float = 0.4  # of the training time
    rerank_layers: int = 0  # the encoder layers the reranker keeps (0: all)
    keyword_queries: int = 0  # terse search-box queries (styled.py)
    situation_queries: int = 0  # situations told in a paragraph (styled.py)
    labelled: Sequence = ()  # retrieval.evaluation.LabelledQuery: extra held-out queries (by document or chunk id)

    @classmethod
    def from_settings(cls, **overrides) -> Options:
        values = {
            "llm_queries": settings.RAG_FINETUNE_LLM_QUERIES,
            "ict_queries": settings.RAG_FINETUNE_ICT_QUERIES,
            "keyword_queries": settings.RAG_FINETUNE_KEYWORD_QUERIES,
            "situation_queries": settings.RAG_FINETUNE_SITUATION_QUERIES,
            "max_steps": settings.RAG_FINETUNE_MAX_STEPS,
            "max_minutes": settings.RAG_FINETUNE_MAX_MINUTES,
            "batch_size": settings.RAG_FINETUNE_BATCH_SIZE,
            "seed": settings.RAG_FINETUNE_SEED,
            "heldout_share": settings.RAG_FINETUNE_HELDOUT_SHARE,
            "min_gain": settings.RAG_FINETUNE_MIN_GAIN,
            "base_model": settings.RAG_EMBEDDER_PATH,
            "reranker": settings.RAG_FINETUNE_RERANKER,
            "rerank_share": settings.RAG_FINETUNE_RERANK_SHARE,
            "rerank_layers": settings.RAG_FINETUNE_RERANK_LAYERS,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "labelled"} | {
            "labelled": len(self.labelled)
        }


@dataclass
class Prepared:
    """Steps 1-3: everything but the training, deterministic for a corpus and seed."""

    split: Split
    train_passages: list[Passage]
    heldout_passages: list[Passage]
    train_pairs: list[Pair]
    eval_queries: list[evaluation.EvalQuery]
    eval_passages: dict[int, str]  # held-out chunk id -> text, ICT query sentences taken out
    triplets: list[negatives.Triplet]
    llm_filter: dict
    mining: dict
    durations: dict = field(default_factory=dict)

    def triplet_texts(self, form: str) -> list[tuple[str, str, str]]:
        """(query, positive, negative), each passage read as an index of
        `form` reads it (retrieval/passage_forms.py): what a model is trained on
        should be what it will be asked to embed or score."""
        where = {p.chunk_id: p for p in self.train_passages}
        found = []
        for t in self.triplets:
            source = where.get(t.pair.chunk_id)
            title, heading = (source.title, source.heading) if source else ("", "")
            positive = passage_forms.read(form, t.pair.positive, title, heading)
            found.append(
                (
                    t.pair.query,
                    positive,
                    passage_forms.read(form, t.negative.text, t.negative.title, t.negative.heading),
                )
            )
        return found

    def eval_texts(self, form: str) -> dict[int, str]:
        """The held-out passages (query sentences taken out) read as an index of `form` reads them."""
        where = {p.chunk_id: p for p in self.heldout_passages}
        return {
            pk: passage_forms.read(form, text, where[pk].title, where[pk].heading) if pk in where else text
            for pk, text in self.eval_passages.items()
        }

    @property
    def pairs_by_method(self) -> dict:
        return dict(sorted(Counter(p.method for p in self.train_pairs).items()))


class Recorder:
    """Passes progress on and writes it to the row (of `model`: a retriever
    or a generator version), at most once a second per stage."""

    def __init__(self, version_id: int | None, callback: Progress | None, model=RetrieverVersion):
        self.version_id = version_id
        self.model = model
        self.callback = callback
        self.stage = None
        self.written = 0.0
        self.durations: dict[str, float] = {}
        self.started: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage:
            self.stage = stage
            self.started.setdefault(stage, now)
            self.written = 0.0
        if self.callback:
            self.callback(stage, done, total)
        if self.version_id and (now - self.written >= 1.0 or done >= total):
            self.written = now
            # Also the heartbeat: a run whose row stops changing for RAG_CLAIM_TIMEOUT may be claimed again.
            transition(
                self.model.objects.filter(pk=self.version_id),
                stage=stage,
                progress_done=done,
                progress_total=total,
            )

    def timed(self, stage: str):
        recorder = self

        class Timer:
            def __enter__(self):
                self.start = time.perf_counter()
                recorder(stage, 0, 1)
                return self

            def __exit__(self, *exc):
                recorder.durations[stage] = round(
                    recorder.durations.get(stage, 0) + time.perf_counter() - self.start, 2
                )
                return False

        return Timer()


class ProgressDisplay:
    """A run's progress for a management command: on a terminal one line per stage, rewritten in place; else a
    line when a stage starts or ends, and every 15 seconds in between."""

    def __init__(self, out):
        self.out = out
        self.stage = None
        self.started = time.monotonic()
        self.shown = 0.0
        self.tty = sys.stdout.isatty()

    def __call__(self, stage, done, total):
        now = time.monotonic()
        new_stage = stage != self.stage
        if not (self.tty or new_stage or done >= total or now - self.shown >= 15):
            return
        line = f"[{now - self.started:5.0f} s] {stage:<12} {done}/{total}"
        if self.tty:
            self.out.write(("\n" if new_stage and self.stage else "\r") + line, ending="")
        else:
            self.out.write(line)
        self.stage, self.shown = stage, now
