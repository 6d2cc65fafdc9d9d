"""The generator's fine-tuning run, step by step; the one module of
generation/finetune/ that reads the database (chunks in, a GeneratorVersion
row out).

1. Split the indexed documents into train and held-out, as the retriever's
   fine-tuning does (same code, same seed: the same documents are held out).
2. Questions for facts of the training documents (generation/finetune/
   examples.py): written by the generator model and filtered as the
   retriever's synthetic questions are, and keyword ones made without a model.
3. Examples: each question's evidence as the answer path finds it (search
   over the training documents only, then the evidence selection), the fact
   at a random position among the distractors, or, for a share of them,
   absent; targets verified by our own checks.
4. Supervised fine-tuning of the packaged model, converted once to a Hugging
   Face checkpoint (generation/finetune/sft.py).
5. Export to GGUF (Q8_0) and check its logits against the checkpoint's
   (generation/finetune/export.py).
6. Judge on held-out documents with the real answer path (evaluate_answers),
   the serving model and then the new one: questions about held-out facts,
   and the labelled questions given whose document is held out (plus the
   unanswerable ones). Switch it in when it is better
   (RAG_GENERATOR_FINETUNE_MIN_GAIN) and no worse on wrong-but-cited answers
   and abstention.
"""

from __future__ import annotations

import json
import logging
import random
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from core import filestore
from core.transitions import stale_before, transition
from generation import evaluation, evidence, generator_versions, serving
from generation.finetune import examples as making
from generation.finetune import export, sft
from generation.gathering import score_units
from generation.models import GeneratorVersion
from generation.prompts import EvidenceLine, build_prompt
from ingestion.models import Document
from retrieval.bm25_index import tokenize
from retrieval.embedding import get_embedder
from retrieval.finetune import queries as writing
from retrieval.finetune.data import Passage, sample, split_documents
from retrieval.finetune.pipeline import CorpusTooSmall, _question_writer, _too_small, load_passages
from retrieval.finetune.runs import Progress, Recorder
from retrieval.search import search_many

log = logging.getLogger(__name__)

Status = GeneratorVersion.Status
QUESTION_SHARE = 0.25  # of the budget: the LLM's questions stop asking after it


@dataclass
class Options:
    facts: int
    llm_questions: int
    heldout_questions: int
    absent_share: float
    positions: str  # examples.RANDOM or RANKED
    train: sft.TrainOptions
    heldout_share: float
    min_gain: float
    seed: int
    switch: bool = True
    labelled: list = field(default_factory=list)  # generation.evaluation.LabelledQuestion
    save_at: tuple = ()  # training steps whose checkpoints are kept too (a benchmark's curve)

    @classmethod
    def from_settings(cls, **overrides) -> Options:
        train = sft.TrainOptions(
            max_steps=overrides.pop("max_steps", None) or settings.RAG_GENERATOR_FINETUNE_MAX_STEPS,
            max_minutes=overrides.pop("max_minutes", None) or settings.RAG_GENERATOR_FINETUNE_MAX_MINUTES,
            batch_size=settings.RAG_GENERATOR_FINETUNE_BATCH_SIZE,
            learning_rate=settings.RAG_GENERATOR_FINETUNE_LEARNING_RATE,
            seed=settings.RAG_FINETUNE_SEED,
        )
        values = {
            "facts": settings.RAG_GENERATOR_FINETUNE_FACTS,
            "llm_questions": settings.RAG_GENERATOR_FINETUNE_LLM_QUESTIONS,
            "heldout_questions": settings.RAG_GENERATOR_FINETUNE_HELDOUT_QUESTIONS,
            "absent_share": settings.RAG_GENERATOR_FINETUNE_ABSENT_SHARE,
            "positions": settings.RAG_GENERATOR_FINETUNE_POSITIONS,
            "train": train,
            "heldout_share": settings.RAG_FINETUNE_HELDOUT_SHARE,
            "min_gain": settings.RAG_GENERATOR_FINETUNE_MIN_GAIN,
            "seed": settings.RAG_FINETUNE_SEED,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def as_dict(self) -> dict:
        values = asdict(self)
        values["labelled"] = len(self.labelled)
        return values


# -- steps 1-3 ------------------------------------------------------------------
def sample_facts(passages: list[Passage], count: int, seed: int) -> list:
    """`count` facts (the first two of a passage at most) from a seeded shuffle of the passages."""
    found = making.facts(sample(passages, len(passages), seed), per_passage=2)
    return found[:count]


def _questions(facts, llm_budget: int, generate, deadline: float, filters: dict, recorder, stage: str) -> list:
    """LLM-written questions for the first `llm_budget` facts (filtered as the
    retriever's are), keyword questions for all."""
    found = []
    if llm_budget and facts:
        asked = [Passage(f.chunk_id, f.document_id, f.heading, f.sentence, f.title) for f in facts[:llm_budget]]
        embedder = get_embedder()
        pairs, stats = writing.llm_pairs(
            asked,
            generate,
            lambda texts: embedder.embed_passages(texts),
            tokenize,
            progress=lambda done, total: recorder(stage, done, total),
            deadline=deadline,
        )
        filters[stage] = stats.as_dict()
        asked_about = {(f.chunk_id, f.sentence): f for f in facts}  # a passage may give two facts
        found += [making.Question(p.query, asked_about[p.chunk_id, p.positive], making.LLM) for p in pairs]
    for fact in facts:
        keywords = making.keyword_question(fact)
        if keywords:
            found.append(making.Question(keywords, fact, making.KEYWORD))
    return found


def build_examples(questions, train_documents: list[int], options: Options, drops: making.Drops, count_tokens):
    """Step 3: each question's evidence as the answer path would find it in
    the training documents, arranged into an example."""
    kinds = making.choose_kinds(len(questions), options.absent_share, options.seed)
    rng = random.Random(options.seed)
    budget = settings.RAG_GENERATOR_CONTEXT - settings.RAG_GENERATOR_MAX_TOKENS
    made = []
    hits_of = search_many(
        [q.text for q in questions], k=settings.RAG_ANSWER_PASSAGES, documents=train_documents, rerank=False
    )
    for question, kind, hits in zip(questions, kinds, hits_of):
        relevant = [h for h in hits if h.score >= settings.RAG_MIN_RELEVANCE]
        scored = score_units(question.text, relevant)
        chosen = evidence.select(
            evidence.ordered(scored.ranked), limit=settings.RAG_EVIDENCE_ITEMS + 2, max_chars=10**6
        )
        distractors = [
            (EvidenceLine(u.text, u.heading), relevant[u.passage].document_id, relevant[u.passage].chunk_id)
            for u in chosen
        ]
        example = making.arrange(
            question,
            distractors,
            kind=kind,
            items=settings.RAG_EVIDENCE_ITEMS,
            rng=rng,
            drops=drops,
            salient=evidence.salient(scored.weights),
            positions=options.positions,
        )
        if example is None:
            continue
        prompt = build_prompt(example.question, example.evidence, count_tokens=count_tokens, budget=budget)
        if prompt.dropped:
            drops.note("evidence_over_context")
            continue
        made.append((example, prompt.messages))
    return made


def heldout_questions(heldout: list[Passage], options: Options, generate, deadline, filters, recorder) -> list:
    """Held-out questions: the labelled ones about held-out documents (and the
    unanswerable ones), then LLM-written ones about held-out facts."""
    names = dict(
        Document.objects.filter(pk__in={p.document_id for p in heldout}).values_list("pk", "original_filename")
    )
    held_names = set(names.values())
    chosen = [q for q in options.labelled if not q.answerable or q.document in held_names]
    facts = sample_facts(heldout, options.heldout_questions * 3, options.seed + 1)
    asked = _questions(facts, options.heldout_questions * 2, generate, deadline, filters, recorder, "heldout")
    written = [q for q in asked if q.method == making.LLM] or asked
    for number, question in enumerate(written[: options.heldout_questions], start=1):
        chosen.append(
            evaluation.LabelledQuestion(
                f"heldout-{number}",
                question.text,
                True,
                question.fact.values,
                names.get(question.fact.document_id, ""),
            )
        )
    return chosen


# -- the run --------------------------------------------------------------------
def claim(version_id: int) -> bool:
    """Take a queued run (or one whose worker stopped writing progress); False when another process has it."""
    taken = GeneratorVersion.objects.filter(Q(stage="queued") | Q(updated__lt=stale_before()), pk=version_id)
    return transition(taken, from_states=[Status.TRAINING], stage="corpus", progress_done=0, error="") == 1


def start(options: Options, progress: Progress | None = None, *, generate=None) -> GeneratorVersion:
    """Create a version row and run the pipeline for it, here and now."""
    version = generator_versions.new_version(str(settings.RAG_GENERATOR_MODEL))
    claim(version.pk)
    return run(version.pk, options, progress, generate=generate)


def packaged_checkpoint() -> Path:
    """The packaged GGUF as a Hugging Face checkpoint (converted once)."""
    from generation.trtllm import gguf_to_hf, is_hf_checkpoint

    folder = Path(settings.RAG_GENERATOR_DIR) / "packaged-checkpoint"
    if not is_hf_checkpoint(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        gguf_to_hf(settings.RAG_GENERATOR_MODEL, folder, "float32")
    return folder


def run(version_id: int, options: Options, progress: Progress | None = None, *, generate=None) -> GeneratorVersion:
    """Steps 1-6 for a claimed version row. On failure the row is marked failed
    with the error and the exception propagates; the serving model stays."""
    version = GeneratorVersion.objects.get(pk=version_id)
    recorder = Recorder(version.pk, progress, model=GeneratorVersion)
    started = time.monotonic()
    folder = Path(version.path).parent
    try:
        with recorder.timed("corpus"):
            passages = load_passages()
            documents = {p.document_id for p in passages}
            if len(documents) < 2:
                raise _too_small("it needs at least 2 documents", len(passages), len(documents))
            split = split_documents(documents, options.heldout_share, options.seed)
            held = set(split.heldout)
            train = [p for p in passages if p.document_id not in held]
            heldout = [p for p in passages if p.document_id in held]
            facts = sample_facts(train, options.facts, options.seed)
            if not facts or not heldout:
                raise _too_small("no passage states a number to ask about", len(passages), len(documents))
        generate = generate or _question_writer()
        deadline = started + options.train.max_minutes * 60 * QUESTION_SHARE
        filters: dict = {}
        with recorder.timed("questions"):
            questions = _questions(facts, options.llm_questions, generate, deadline, filters, recorder, "questions")
        with recorder.timed("heldout_questions"):  # written now: the LLM's share of the budget ends before training
            judged_on = heldout_questions(heldout, options, generate, deadline + 60, filters, recorder)
        drops = making.Drops()
        with recorder.timed("examples"):
            checkpoint = packaged_checkpoint()
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
            count = lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)  # noqa: E731
            made = build_examples(questions, list(split.train), options, drops, count)
            if not made:
                raise CorpusTooSmall(
                    "No training example could be made: the training documents' facts found no evidence to put "
                    "them among. Add documents, or raise RAG_GENERATOR_FINETUNE_FACTS."
                )
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "examples.jsonl", "w", encoding="utf-8") as out:
            for example, _ in made:
                out.write(json.dumps(example.as_dict(), ensure_ascii=False) + "\n")
        with open(folder / "heldout.jsonl", "w", encoding="utf-8") as out:  # evaluate_answers reads it as it is
            for question in judged_on:
                out.write(json.dumps(asdict(question), ensure_ascii=False) + "\n")
        version.train_documents, version.heldout_documents = len(split.train), len(split.heldout)
        version.examples = {
            "by_kind": making.counts_by_kind([e for e, _ in made]),
            "dropped": drops.as_dict(),
            "questions": len(questions),
            "facts": len(facts),
            "question_filter": filters,
        }
        version.save(update_fields=["train_documents", "heldout_documents", "examples", "updated"])
        with recorder.timed("train"):
            remaining = max(0.5, options.train.max_minutes - (time.monotonic() - started) / 60)
            train_options = sft.TrainOptions(**{**asdict(options.train), "max_minutes": remaining})
            trained = sft.train(
                checkpoint,
                [(messages, e.target) for e, messages in made],
                version.checkpoint,
                train_options,
                progress=lambda done, total: recorder("train", done, total),
                save_at=options.save_at,
            )
        with recorder.timed("export"):
            export.export_gguf(version.checkpoint, settings.RAG_GENERATOR_MODEL, version.path, name=version.name)
            prompts = [
                tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                for _, messages in made[:3]
            ]
            gap = export.logit_gap(version.path, version.checkpoint, prompts)
            if not gap.ok:
                raise export.ExportError(f"The exported model's logits do not match the checkpoint's: {gap.as_dict()}")
        serving_name = serving.serving_name()
        with recorder.timed("evaluate"):
            from generation.services import evaluate_answers

            before = evaluate_answers(judged_on, progress=lambda d, t: recorder("evaluate", d, 2 * t))
            with serving.trying(version.path):
                after = evaluate_answers(judged_on, progress=lambda d, t: recorder("evaluate", t + d, 2 * t))
        decision = decide_switch(before["summary"], after["summary"], options.min_gain, serving_name)
        version.training = trained.as_dict()
        version.metrics = {
            "questions": len(judged_on),
            "labelled": sum(1 for q in judged_on if not q.id.startswith("heldout-")),
            "before": before["summary"],
            "after": after["summary"],
            "decision": decision,
            "export": gap.as_dict(),
        }
        version.durations = recorder.durations
        version.duration = round(time.monotonic() - started, 1)
        version.status = Status.EVALUATED if decision["better"] else Status.REJECTED
        version.stage = ""
        if filestore.shared():  # for every host
            version.artifact = filestore.put_file(f"generators/{version.name}", version.path)
        version.save()
        report = {"options": options.as_dict(), "version": version.name, "examples": version.examples}
        report |= {"training": version.training, "metrics": version.metrics, "durations": version.durations}
        report["rows"] = {"before": before["questions"], "after": after["questions"]}
        (folder / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    except Exception as exc:
        log.exception("Generator fine-tuning run %s failed", version.name)
        transition(
            GeneratorVersion.objects.filter(pk=version.pk),
            to=Status.FAILED,
            stage="",
            error=str(exc)
            if isinstance(exc, CorpusTooSmall)
            else f"{recorder.stage or 'start'}: {type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}",
            duration=round(time.monotonic() - started, 1),
            durations=recorder.durations,
        )
        raise
    if decision["better"] and options.switch:
        try:
            generator_versions.switch_to(version.pk)
        except generator_versions.SwitchError as exc:  # the row keeps its report; it can be switched in later
            transition(GeneratorVersion.objects.filter(pk=version.pk), error=f"Switch failed: {exc}")
        version.refresh_from_db()
    return version


def decide_switch(before: dict, after: dict, min_gain: float, serving_name: str) -> dict:
    """Better: answers hold the fact at least `min_gain` more often, no more
    wrong-but-cited answers, abstention on unanswerable questions no lower."""
    gain = (after.get("holds_fact") or 0.0) - (before.get("holds_fact") or 0.0)
    reasons = []
    if gain < min_gain:
        reasons.append(f"holds the fact {gain:+.3f} (needs {min_gain:+.3f})")
    if (after.get("wrong_cited") or 0.0) > (before.get("wrong_cited") or 0.0):
        reasons.append("more wrong answers with a citation")
    if (after.get("abstained") or 0.0) < (before.get("abstained") or 0.0):
        reasons.append("less abstention on unanswerable questions")
    return {"better": not reasons, "gain": round(gain, 4), "against": serving_name, "reasons": reasons}
