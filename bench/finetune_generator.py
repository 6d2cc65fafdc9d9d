"""The generator's fine-tuning on a corpus, judged on its held-out documents.

    .venv/bin/python bench/finetune_generator.py demo|postgresql [--label NAME]
        [--max-steps N] [--minutes M] [--facts N] [--llm-questions N] [--heldout-questions N]
        [--curve 25,75,150]

The corpus is ingested (as bench/answers.py does, in the same data folder)
and `finetune_generator` runs on it with bench/qa/<corpus>.jsonl as labelled
questions (those whose document is held out, and the unanswerable ones,
judge the run beside the held-out questions it writes), never switching.
Writes bench/results/generator-<corpus>-<label>.json: examples by kind,
training throughput and loss curve, time by stage, held-out answers before
(the packaged model) and after; with --curve, the checkpoints after those
training steps are exported and judged on the same held-out questions too
(the curve of gain against steps).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.answers import corpus_files, machine  # noqa: E402
from bench.common import ROOT, setup_django  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--label", default="now")
    for option in ("max-steps", "facts", "llm-questions", "heldout-questions"):
        parser.add_argument(f"--{option}", type=int)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--positions", choices=["random", "ranked"])
    parser.add_argument("--curve", default="", help="Training steps whose checkpoints are judged too: 25,75,150.")
    args = parser.parse_args()
    curve = tuple(int(step) for step in args.curve.split(",") if step)
    files = corpus_files(args.corpus)
    setup_django(str(Path(tempfile.gettempdir()) / f"rag-answers-{args.corpus}"))
    from django.core.management import call_command

    from generation import evaluation
    from generation.finetune import pipeline
    from retrieval.finetune.runs import ProgressDisplay

    call_command("ingest", *map(str, files), "--inline", stdout=sys.stderr)
    with open(ROOT / "bench" / "qa" / f"{args.corpus}.jsonl", encoding="utf-8") as handle:
        labelled = evaluation.parse_questions(handle)
    options = pipeline.Options.from_settings(
        max_steps=args.max_steps,
        max_minutes=args.minutes,
        facts=args.facts,
        llm_questions=args.llm_questions,
        heldout_questions=args.heldout_questions,
        positions=args.positions,
        switch=False,
        labelled=labelled,
        save_at=curve,
    )

    class Out:
        def write(self, line, ending="\n"):
            print(line, end=ending, file=sys.stderr, flush=True)

    version = pipeline.start(options, progress=ProgressDisplay(Out()))
    report = {
        "corpus": args.corpus,
        "label": args.label,
        "machine": machine(),
        "version": version.name,
        "options": options.as_dict(),
        "examples": version.examples,
        "training": version.training,
        "durations": version.durations,
        "metrics": version.metrics,
        "train_documents": version.train_documents,
        "heldout_documents": version.heldout_documents,
    }
    report["curve"] = judge_steps(version, curve)
    out = ROOT / "bench" / "results" / f"generator-{args.corpus}-{args.label}.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: report[k] for k in ("examples", "durations")}, indent=1))
    shown = ("holds_fact", "cited_holds_fact", "wrong_cited", "false_abstention", "abstained", "fact_in_generated")
    print("| measure | before | after |\n| --- | --- | --- |")
    for key in (*shown, "latency_p50", "kinds"):
        print(f"| {key} | {version.metrics['before'].get(key)} | {version.metrics['after'].get(key)} |")
    print(json.dumps(version.metrics["decision"]), json.dumps(version.metrics["export"]))
    for point in report["curve"]:
        print(f"after {point['steps']} steps: " + ", ".join(f"{k} {point[k]}" for k in shown[:5]))
    training = version.training
    print(
        f"training: {training['steps']} steps, {training['tokens_per_second']} tokens/s, {training['dtype']}, "
        f"loss {training['first_loss']} -> {training['last_loss']}"
    )


def judge_steps(version, steps) -> list[dict]:
    """Held-out answers with the checkpoint after each of `steps` (exported like the final one)."""
    from django.conf import settings

    from generation import evaluation, serving
    from generation.finetune import export
    from generation.services import evaluate_answers

    folder = Path(version.path).parent
    with open(folder / "heldout.jsonl", encoding="utf-8") as handle:
        questions = evaluation.parse_questions(handle)
    points = [{"steps": 0, **version.metrics["before"]}]
    for step in steps:
        checkpoint = Path(version.checkpoint) / f"step-{step}"
        if not checkpoint.is_dir():  # the run stopped before it
            continue
        path = export.export_gguf(checkpoint, settings.RAG_GENERATOR_MODEL, folder / f"step-{step}.gguf")
        with serving.trying(str(path)):
            points.append({"steps": step, **evaluate_answers(questions)["summary"]})
    points.append({"steps": version.training["steps"], **version.metrics["after"]})
    return points


if __name__ == "__main__":
    main()
