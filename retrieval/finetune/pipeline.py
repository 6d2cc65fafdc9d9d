"""The fine-tuning run, step by step; the one module of retrieval/finetune/
that reads the database (chunks in, a RetrieverVersion row out).

1. Split the indexed documents into train and held-out (by document, seeded).
2. Synthetic queries: LLM-written questions, keyword queries and situations
   (styled.py) and ICT sentences for sampled passages of each side (held-out
   ones become the evaluation queries).
3. Hard negatives for the training pairs, mined over the training passages
   with the serving model and BM25.
4. Fine-tune the base model (retrieval/finetune/train.py).
5. Evaluate base, serving (when it is not the base) and the new model on the
   held-out queries over the held-out passages, with BM25 and hybrid.
6. Save the version: report.json, report.md and pairs.jsonl beside the model,
   metrics on the row; switch it in when its recall@10 beats the serving
   model's by RAG_FINETUNE_MIN_GAIN (relative).

`progress(stage, done, total)` is called throughout; the row records the
stage too, so the admin shows how far a run is.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q
from django.utils.module_loading import import_string

from core.transitions import stale_before, transition
from ingestion.models import Chunk
from retrieval import artifacts, stores, versions
from retrieval.access import SEARCHABLE
from retrieval.bm25_index import BM25Index, tokenize
from retrieval.embedding import get_embedder, model_identity
from retrieval.finetune import evaluate as evaluation
from retrieval.finetune import negatives, queries, real, reranker_step, styled
from retrieval.finetune import report as reporting
from retrieval.finetune.data import Passage, sample, share, split_documents
from retrieval.finetune.queries import FEEDBACK, ICT, LLM
from retrieval.finetune.runs import Options, Prepared, Progress, Recorder
from retrieval.finetune.styled import KEYWORD, SITUATION
from retrieval.models import RetrieverVersion

log = logging.getLogger(__name__)

Status = RetrieverVersion.Status
# The LLM questions may take this share of a run's time budget (max_minutes);
# training gets what is left of the budget when it starts (at least MIN_TRAIN_SHARE).
LLM_SHARE = 0.4
MIN_TRAIN_SHARE = 0.2
MIN_DOCUMENTS = 2  # one to hold out, one to train on


class CorpusTooSmall(ValueError):
    """The corpus (or the query budget) cannot give both training pairs and
    held-out questions; the message says what the user can do."""


def _too_small(what: str, passages: int, documents: int) -> CorpusTooSmall:
    return CorpusTooSmall(
        f"The corpus is too small to fine-tune on: {what} ({documents} indexed documents, {passages} passages). "
        "Fine-tuning holds some documents out to judge the new model, so it needs several documents with a few "
        "passages of whole sentences each: add documents (a few dozen is a good start), pass labelled questions "
        "(finetune_retriever --labelled), or raise RAG_FINETUNE_HELDOUT_SHARE or the query budgets "
        "(RAG_FINETUNE_ICT_QUERIES, RAG_FINETUNE_KEYWORD_QUERIES, RAG_FINETUNE_LLM_QUERIES)."
    )


# -- steps 1-3 ------------------------------------------------------------
def corpus_summary() -> dict:
    """What a run would start from (the admin shows it before a run starts):
    indexed documents and passages, and why a run would stop at once, if it would."""
    counts = Chunk.objects.filter(SEARCHABLE).aggregate(
        passages=Count("pk"), documents=Count("document", distinct=True)
    )
    problem = None
    if counts["documents"] < MIN_DOCUMENTS:
        problem = str(
            _too_small(f"it needs at least {MIN_DOCUMENTS} documents", counts["passages"], counts["documents"])
        )
    return {**counts, "problem": problem}


def load_passages() -> list[Passage]:
    """The searchable passages, in chunk order."""
    rows = (
        Chunk.objects.filter(SEARCHABLE)
        .order_by("pk")
        .values_list("pk", "document_id", "heading", "text", "document__title")
    )
    return [Passage(pk, document_id, heading, text, title) for pk, document_id, heading, text, title in rows]


def prepare(options: Options, progress: Progress | None = None, *, generate=None) -> Prepared:
    """Steps 1 to 3. `generate(messages) -> text` defaults to the configured generator engine."""
    recorder = progress if isinstance(progress, Recorder) else Recorder(None, progress)
    llm_deadline = time.monotonic() + options.max_minutes * 60 * LLM_SHARE

    with recorder.timed("corpus"):
        passages = load_passages()
        documents = len({p.document_id for p in passages})
        if documents < MIN_DOCUMENTS:
            raise _too_small(f"it needs at least {MIN_DOCUMENTS} documents", len(passages), documents)
        split = split_documents({p.document_id for p in passages}, options.heldout_share, options.seed)
        heldout_ids = set(split.heldout)
        train = [p for p in passages if p.document_id not in heldout_ids]
        heldout = [p for p in passages if p.document_id in heldout_ids]
        if not train or not heldout:
            raise _too_small("the training and the held-out documents both need passages", len(passages), documents)
    embedder = get_embedder()  # the serving model: it judges questions and mines negatives
    budget = {
        method: (count - share(count, len(heldout), len(passages)), share(count, len(heldout), len(passages)))
        for method, count in (
            (LLM, options.llm_queries),
            (KEYWORD, options.keyword_queries),
            (SITUATION, options.situation_queries),
            (ICT, options.ict_queries),
        )
    }
    # LLM passages first, the other kinds from the rest: no passage has queries of two kinds.
    order = {
        "train": sample(train, len(train), options.seed),
        "heldout": sample(heldout, len(heldout), options.seed + 1),
    }
    llm = {side: order[side][: budget[LLM][i]] for i, side in enumerate(("train", "heldout"))}
    llm_made, filters = {}, {}
    if options.llm_queries:
        if generate is None:
            generate = _question_writer()
        with recorder.timed("llm_queries"):
            asked = len(llm["train"]) + len(llm["heldout"])
            offset = 0
            for side in ("train", "heldout"):

                def step(done, total, offset=offset):
                    recorder("llm_queries", offset + done, asked)

                llm_made[side], stats = queries.llm_pairs(
                    llm[side], generate, embedder.embed_queries, tokenize, step, deadline=llm_deadline
                )
                filters[side] = stats.as_dict()
                offset += len(llm[side])
    made = {ICT: {}, KEYWORD: {}, SITUATION: {}}
    with recorder.timed("ict_queries"):
        # Model-free kinds, each from passages no other kind has (ICT last: the most plentiful).
        frequencies = styled.document_frequencies(train)
        makers = {
            KEYWORD: lambda passage: styled.keyword_pair(passage, options.seed, frequencies),
            SITUATION: lambda passage: styled.situation_pair(passage, options.seed, frequencies),
            ICT: lambda passage: queries.ict_pair(passage, options.seed),
        }
        for i, side in enumerate(("train", "heldout")):
            rest = iter(order[side][len(llm[side]) :])
            for method, make in makers.items():
                made[method][side] = _take(rest, budget[method][i], make)
            recorder("ict_queries", i + 1, 2)
    ict_made = made[ICT]
    feedback = real.feedback_queries()
    train_pairs = llm_made.get("train", []) + [pair for kind in made.values() for pair in kind["train"]]
    train_pairs += real.feedback_pairs(feedback, train)
    heldout_texts = {p.chunk_id: p.text for p in heldout}
    masked, holders = queries.mask_sentences(heldout_texts, [p.query for p in ict_made["heldout"]])
    eval_queries = [evaluation.EvalQuery(p.query, frozenset({p.chunk_id}), LLM) for p in llm_made.get("heldout", [])]
    eval_queries += [
        evaluation.EvalQuery(p.query, frozenset(holders[p.query] or {p.chunk_id}), ICT) for p in ict_made["heldout"]
    ]
    eval_queries += [
        evaluation.EvalQuery(p.query, frozenset({p.chunk_id}), method)
        for method in (KEYWORD, SITUATION)
        for p in made[method]["heldout"]
    ]
    eval_queries += real.heldout_queries(options.labelled, heldout)
    eval_queries += real.heldout_queries(feedback, heldout, source=FEEDBACK)
    if not eval_queries:
        raise _too_small("its held-out documents gave no question to evaluate with", len(passages), documents)
    if not train_pairs:
        raise _too_small("its training documents gave no question to train on", len(passages), documents)

    with recorder.timed("negatives"):
        steps = 4
        recorder("negatives", 0, steps)
        # The serving index already holds these passages' vectors from the serving model.
        passage_vectors = stores.passage_vectors([p.chunk_id for p in train])
        if passage_vectors is None:
            passage_vectors = embedder.embed_passages([p.text for p in train])
        recorder("negatives", 1, steps)
        query_vectors = embedder.embed_queries([p.query for p in train_pairs])
        positive_vectors = embedder.embed_passages([p.positive for p in train_pairs])
        recorder("negatives", 2, steps)
        bm25 = BM25Index()
        bm25.add([p.chunk_id for p in train], [p.text for p in train])
        recorder("negatives", 3, steps)
        triplets, mining = negatives.mine(
            train_pairs,
            train,
            query_vectors=query_vectors,
            positive_vectors=positive_vectors,
            passage_vectors=passage_vectors,
            bm25=bm25,
            rrf_k=settings.RAG_RRF_K,
        )
        recorder("negatives", steps, steps)
    llm_filter = {side: filters[side] for side in filters}
    return Prepared(
        split=split,
        train_passages=train,
        heldout_passages=heldout,
        train_pairs=train_pairs,
        eval_queries=eval_queries,
        eval_passages=masked,
        triplets=triplets,
        llm_filter=llm_filter,
        mining=mining.as_dict(),
        durations=dict(recorder.durations),
    )


def _take(passages, want: int, make) -> list:
    """Up to `want` pairs from `make(passage)` (None: no pair), consuming
    `passages` (an iterator) only as far as needed."""
    made = []
    while len(made) < want:
        passage = next(passages, None)
        if passage is None:
            break
        pair = make(passage)
        if pair is not None:
            made.append(pair)
    return made


def _question_writer():
    """generate(messages) -> text from the factory settings name
    (RAG_FINETUNE_QUESTION_WRITER; by default the configured generator):
    retrieval is below generation and does not import it."""
    factory = import_string(settings.RAG_FINETUNE_QUESTION_WRITER)
    return factory(max_new_tokens=queries.QUESTION_MAX_TOKENS, stop=queries.QUESTION_STOP)


# -- the run --------------------------------------------------------------
def start(options: Options, progress: Progress | None = None, *, generate=None) -> RetrieverVersion:
    """Create a version row and run the pipeline for it, here and now."""
    version = versions.new_version(options.base_model)
    claim(version.pk)
    return run(version.pk, options, progress, generate=generate)


def claim(version_id: int) -> bool:
    """Take a queued run (or one whose worker stopped writing progress for
    RAG_CLAIM_TIMEOUT seconds); False when another process has it."""
    taken = RetrieverVersion.objects.filter(Q(stage="queued") | Q(updated__lt=stale_before()), pk=version_id)
    return (
        transition(taken, from_states=[Status.TRAINING], stage="corpus", progress_done=0, progress_total=0, error="")
        == 1
    )


def run(
    version_id: int,
    options: Options,
    progress: Progress | None = None,
    *,
    generate=None,
    prepared: Prepared | None = None,
) -> RetrieverVersion:
    """Steps 1-6 for a claimed version row (steps 1-3 skipped when `prepared`
    is given, e.g. by a benchmark that trains several models on the same data).
    On failure the row is marked failed with the error, and the exception
    propagates; the serving model is untouched."""
    version = RetrieverVersion.objects.get(pk=version_id)
    recorder = Recorder(version.pk, progress)
    started = time.perf_counter()
    budget_end = time.monotonic() + options.max_minutes * 60
    try:
        prepared = prepared or prepare(options, recorder, generate=generate)
        folder = Path(version.path).parent
        folder.mkdir(parents=True, exist_ok=True)
        _write_pairs(folder / "pairs.jsonl", prepared)
        version.train_documents, version.heldout_documents = len(prepared.split.train), len(prepared.split.heldout)
        version.train_chunks, version.heldout_chunks = len(prepared.train_passages), len(prepared.heldout_passages)
        version.pairs = prepared.pairs_by_method
        version.save(
            update_fields=["train_documents", "heldout_documents", "train_chunks", "heldout_chunks", "pairs", "updated"]
        )

        from retrieval.finetune.train import train  # torch and sentence-transformers: loaded when a run trains

        # What is left of the run's budget (the questions took their share),
        # the reranker's share of it set apart.
        left = max((budget_end - time.monotonic()) / 60, options.max_minutes * MIN_TRAIN_SHARE)
        with recorder.timed("train"):
            trained = train(
                options.base_model,
                prepared.triplet_texts(settings.RAG_PASSAGE_FORM),  # as the version's index will read them
                version.path,
                max_steps=options.max_steps,
                max_minutes=left * (1 - options.rerank_share) if options.reranker else left,
                batch_size=options.batch_size,
                seed=options.seed,
                progress=lambda done, total: recorder("train", done, total),
            )
        reranker = None
        if options.reranker:
            with recorder.timed("rerank_train"):
                reranker = reranker_step.train_reranker(
                    options,
                    prepared,
                    folder,
                    max_minutes=max((budget_end - time.monotonic()) / 60, left * options.rerank_share),
                    progress=lambda done, total: recorder("rerank_train", done, total),
                )

        with recorder.timed("evaluate"):
            serving = stores.active_retriever()
            embedders = {"base": get_embedder(options.base_model)}
            if model_identity(serving["model"]) != model_identity(options.base_model):
                embedders["serving"] = get_embedder(serving["model"])
            embedders["finetuned"] = get_embedder(version.path)
            documents = {p.chunk_id: p.document_id for p in prepared.heldout_passages}
            result = evaluation.evaluate(
                prepared.eval_queries,
                prepared.eval_texts(settings.RAG_PASSAGE_FORM),  # as the version's index will read them
                embedders,
                documents=documents,
                rrf_k=settings.RAG_RRF_K,
                progress=lambda d, t: recorder("evaluate", d, t),
                keep=settings.RAG_RERANK_DEPTH,
            )
        if reranker is not None:
            with recorder.timed("rerank_evaluate"):
                reranker.update(
                    reranker_step.evaluate_reranker(
                        reranker["path"], prepared, result, documents, lambda d, t: recorder("rerank_evaluate", d, t)
                    )
                )
        serving_method = "serving" if "serving" in embedders else "base"
        judged, basis = reporting.deciding_methods(
            result, prepared.eval_queries, documents, settings.RAG_FINETUNE_MIN_REAL_QUERIES
        )
        decision = reporting.decide(
            judged, serving_method, serving["name"], options.min_gain, (reranker or {}).get("decision")
        )
        decision["basis"] = basis
        durations = {**prepared.durations, **recorder.durations}
        with recorder.timed("report"):
            report = reporting.build(
                version, options, prepared, trained, result, decision, durations, serving, reranker
            )
            (folder / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
            (folder / "report.md").write_text(reporting.render_markdown(report))
        version.metrics = {
            "queries": result["queries"],
            "passages": result["passages"],
            "methods": result["methods"],
            "by_source": result["by_source"],
            "decision": decision,
            "training": trained.as_dict(),
            "reranker": reranker,
            "llm_filter": prepared.llm_filter,
            "durations": report["durations"],
        }
        version.status = Status.EVALUATED if decision["better"] else Status.REJECTED
        version.duration = round(time.perf_counter() - started, 2)
        version.stage = ""
        version.save()
        with recorder.timed("publish"):
            artifacts.publish(version)  # for every host, when the file store is shared
    except Exception as exc:
        log.exception("Fine-tuning run %s failed", version.name)
        transition(
            RetrieverVersion.objects.filter(pk=version.pk),
            to=Status.FAILED,
            error=str(exc)
            if isinstance(exc, CorpusTooSmall)  # the user's to act on: no traceback
            else f"{recorder.stage or 'start'}: {type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}",
            duration=round(time.perf_counter() - started, 2),
        )
        raise
    if decision["better"] and options.switch:
        try:
            with recorder.timed("switch"):
                versions.switch_to(version.pk, progress=lambda done, total: recorder("switch", done, total))
        except Exception:  # the row has the error; the run's model and report stay, to switch to later
            log.exception("Retriever %s was not switched in", version.name)
        version.refresh_from_db()
        version.metrics["durations"]["switch"] = recorder.durations["switch"]
        version.save(update_fields=["metrics", "updated"])
    return version


def _write_pairs(path: Path, prepared: Prepared) -> None:
    negative_of = {id(t.pair): t for t in prepared.triplets}
    with open(path, "w", encoding="utf-8") as out:
        for pair in prepared.train_pairs:
            triplet = negative_of.get(id(pair))
            row = triplet.as_dict() if triplet else {**pair.as_dict(), "negative_chunk_id": None}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
