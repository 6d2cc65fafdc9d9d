"""The answerability fit on the corpus the product serves, run in the
background (generation/tasks.py) or by `manage.py fit_answerability`:

1. Facts of the searchable passages (sentences stating a number, as the
   generator's fine-tuning finds them) and the generator model's question
   about each (filtered as the retriever's are). Keyword questions, which the
   fine-tunings also make, are not used: they repeat the fact's own words, so
   every one of them is found and the fit learns that an answerable question
   leaves no word unmatched, which no real question does (docs/BENCHMARKS.md).
2. Probes (generation/probes.py): each question answerable on what search
   finds for it, unanswerable with the fact's passage removed, unanswerable
   with its most specific word swapped for one the corpus never uses. Each
   probe is judged as an answer judges its question (gathering.judge: the
   same retrieval, evidence scoring and gate signals).
3. The fit (generation/answerability.py), starting from the packaged gate, on
   the probes of most documents; precision and recall on those of the
   held-out documents, for the fit and for the gate now serving.
4. The artifact and the version row; the version decides answers from then
   on when its held-out balanced accuracy (recall and abstention, averaged)
   is no worse than the serving gate's.
"""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.db.models import Max

from core import filestore
from core.transitions import transition
from generation import answerability, gate_versions, gathering, probes
from generation.finetune import examples as making
from generation.finetune.pipeline import _questions, sample_facts
from generation.models import AnswerabilityVersion
from ingestion.models import Chunk
from retrieval import stores
from retrieval.access import SEARCHABLE
from retrieval.bm25_index import tokenize
from retrieval.finetune.data import split_documents
from retrieval.finetune.pipeline import _question_writer, load_passages
from retrieval.passages import term_statistics
from retrieval.search import search

log = logging.getLogger(__name__)

Status = AnswerabilityVersion.Status
SEED = 15
EXTRA_HITS = 4  # searched beyond RAG_ANSWER_PASSAGES, to fill the place of removed passages
MAX_ABSENT_WORDS = 400
LLM_MINUTES = 8.0  # the generator model's questions stop after this long (about 1.5 s each on 2 cores)


class TooLittle(ValueError):
    """The corpus gives too few facts or documents to fit on; the message says what to do."""


def corpus_state() -> dict:
    """What a fit is made from: the searchable passages and documents, the
    newest passage, the serving retriever (a change of any asks for a refit)."""
    chunks = Chunk.objects.filter(SEARCHABLE)
    return {
        "passages": chunks.count(),
        "documents": chunks.values("document").distinct().count(),
        "last_passage": chunks.aggregate(last=Max("pk"))["last"] or 0,
        "retriever": stores.active_retriever()["name"],
    }


def stale() -> str:
    """Why the serving gate should be refit ("" when it need not be): no fit
    yet, or the corpus or the retriever changed since the active one."""
    state = corpus_state()
    active = AnswerabilityVersion.objects.filter(is_active=True).first()
    if active is None:
        return "no model fitted on this corpus yet"
    if active.corpus.get("retriever") != state["retriever"]:
        return f"the serving retriever is now {state['retriever']}"
    if {k: active.corpus.get(k) for k in ("passages", "last_passage")} != {
        k: state[k] for k in ("passages", "last_passage")
    }:
        return "the corpus changed"
    return ""


def start(reason: str, *, generate=None, progress=None) -> AnswerabilityVersion:
    """Create a version row and fit it here and now."""
    version = gate_versions.new_version(reason)
    return run(version.pk, generate=generate, progress=progress)


def run(version_id: int, *, generate=None, progress=None) -> AnswerabilityVersion:
    """Fit the version's model; the row records the stages, the probes, the
    measures, the decision, or the error. `generate(messages) -> text`
    writes the LLM's questions (default: the configured question writer)."""
    version = AnswerabilityVersion.objects.get(pk=version_id)
    started = time.monotonic()

    def stage(name: str, done: int = 0, total: int = 0) -> None:
        AnswerabilityVersion.objects.filter(pk=version.pk).update(stage=name, progress_done=done, progress_total=total)
        if progress:
            progress(name, done, total)

    try:
        stage("corpus")
        state = corpus_state()
        passages = load_passages()
        documents = {p.document_id for p in passages}
        if len(documents) < 2:
            raise TooLittle(
                f"Fitting needs at least 2 indexed documents, to judge the fit on documents it did not see "
                f"(have {len(documents)})."
            )
        split = split_documents(documents, settings.RAG_ANSWERABILITY_HELDOUT_SHARE, SEED)
        facts = sample_facts(passages, settings.RAG_ANSWERABILITY_QUESTIONS, SEED)
        generate = generate or _question_writer()
        filters: dict = {}
        deadline = time.monotonic() + LLM_MINUTES * 60
        questions = _questions(
            facts, len(facts), generate, deadline, filters, lambda s, d, t: stage(s, d, t), "questions"
        )
        questions = [q for q in questions if q.method == making.LLM]
        absent = absent_words()
        rows, skipped = [], {"not_retrieved": 0, "declined_by_rule": 0, "nothing_to_swap": 0}
        rng = random.Random(SEED)
        for done, question in enumerate(questions, start=1):
            stage("probes", done, len(questions))
            rows += probe_rows(question, absent, rng, skipped)
        stage("fit")
        asked = sum(r.kind == probes.ASKED for r in rows)
        if asked < settings.RAG_ANSWERABILITY_MIN_PROBES:
            raise TooLittle(
                f"Too few answerable probes to fit on: {asked} of {len(questions)} questions about {len(facts)} facts "
                f"found their passage, RAG_ANSWERABILITY_MIN_PROBES is {settings.RAG_ANSWERABILITY_MIN_PROBES}. "
                "The packaged gate decides; add documents or raise RAG_ANSWERABILITY_QUESTIONS."
            )
        model = answerability.fit(
            rows,
            name=version.name,
            abstention=settings.RAG_ANSWERABILITY_ABSTENTION,
            heldout=set(split.heldout),
            prior=settings.RAG_ANSWERABILITY_PRIOR,
        )
        serving = gate_versions.current()
        if serving.threshold is None:
            serving = answerability.Model(
                serving.intercept, serving.coefficients, settings.RAG_EVIDENCE_THRESHOLD, serving.name
            )
        judged = [r for r in rows if r.document in set(split.heldout)]
        decision = decide(model.fitted["heldout"], answerability.measures(serving, judged), serving.name)
        answerability.save(model, version.path)
        if filestore.shared():  # for every host
            version.artifact = filestore.put_file(f"answerability/{version.name}", version.path)
        _write_probes(Path(version.path).with_suffix(".probes.jsonl"), rows, set(split.heldout))
        version.corpus = state
        version.retriever = state["retriever"]
        version.train_documents = len(split.train)
        version.heldout_documents = len(split.heldout)
        version.metrics = {
            "fitted": model.fitted,
            "serving": {"name": serving.name, "heldout": decision["serving"]},
            "decision": decision,
            "skipped": skipped,
            "questions": {"facts": len(facts), "asked": len(questions), "llm_filter": filters},
            "intercept": model.intercept,
            "coefficients": model.coefficients,
            "threshold": model.threshold,
        }
        version.status = Status.REJECTED
        version.stage = ""
        version.duration = round(time.monotonic() - started, 1)
        version.save()
        if decision["switch"]:
            gate_versions.activate(version)
        version.refresh_from_db()
        return version
    except Exception as error:
        log.exception("Answerability fit %s failed", version.name)
        message = str(error) if isinstance(error, TooLittle) else traceback.format_exc(limit=8)
        transition(
            AnswerabilityVersion.objects.filter(pk=version.pk),
            to=Status.FAILED,
            error=message,
            stage="",
            duration=round(time.monotonic() - started, 1),
        )
        version.refresh_from_db()
        return version


def _write_probes(path: Path, rows, heldout: set) -> None:
    """Every probe's signals and label beside the artifact: what the fit saw, to audit or refit offline."""
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            line = {**asdict(row), "heldout": row.document in heldout}
            out.write(json.dumps(line) + "\n")


def probe_rows(question, absent: list[str], rng: random.Random, skipped: dict) -> list[answerability.Row]:
    """The probes of one question (generation/probes.py) as fit rows; what
    could not be probed is counted in `skipped`."""
    fact = question.fact
    k = settings.RAG_ANSWER_PASSAGES
    hits = search(question.text, k=k + EXTRA_HITS)
    rows = []
    if any(h.chunk_id == fact.chunk_id for h in hits[:k]):
        scored, row = _row(question.text, hits[:k], True, probes.ASKED, fact.document_id, skipped)
        rows += row
    else:
        skipped["not_retrieved"] += 1
        scored = None
    rest = probes.without_fact(hits, fact.chunk_id, fact.values)[:k]
    rows += _row(question.text, rest, False, probes.REMOVED, fact.document_id, skipped)[1]
    if scored is None:
        scored = gathering.score_units(question.text, hits[:k])
    changed = probes.swapped(question.text, scored.weights, scored.profile.words, absent, rng)
    if changed is None:
        skipped["nothing_to_swap"] += 1
    else:
        rows += _row(changed, search(changed, k=k), False, probes.SWAPPED, fact.document_id, skipped)[1]
    return rows


def _row(text, hits, answerable, kind, document, skipped):
    scored, unknown, signals = gathering.judge(text, hits)
    if not signals or unknown:  # declined before the model: nothing to learn from
        skipped["declined_by_rule"] += 1
        return scored, []
    return scored, [answerability.Row(signals, answerable, kind, document, text)]


def absent_words() -> list[str]:
    """Words of the embedder's vocabulary that no passage uses (up to
    MAX_ABSENT_WORDS, seeded): what a swapped probe asks about."""
    vocabulary = Path(settings.RAG_EMBEDDER_PATH) / "vocab.txt"
    try:
        words = probes.candidate_words(vocabulary.read_text(encoding="utf-8").split())
    except OSError:
        return []
    random.Random(SEED).shuffle(words)
    words = [w for w, tokens in zip(words[: MAX_ABSENT_WORDS * 3], tokenize(words[: MAX_ABSENT_WORDS * 3])) if tokens]
    counts, _ = term_statistics(words)
    return [w for w in words if counts.get(w, 0) == 0][:MAX_ABSENT_WORDS]


def decide(fitted: dict, serving: dict, serving_name: str) -> dict:
    """Switch the fitted model in when its held-out balanced accuracy (the
    mean of recall and abstention) is at least the serving gate's."""

    def balanced(measures: dict) -> float:
        return round(((measures.get("recall") or 0.0) + (measures.get("abstention") or 0.0)) / 2, 3)

    return {
        "fitted_balanced": balanced(fitted),
        "serving_balanced": balanced(serving),
        "serving": serving,
        "serving_name": serving_name,
        "switch": balanced(fitted) >= balanced(serving),
    }
