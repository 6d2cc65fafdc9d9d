from django.core.management.base import BaseCommand, CommandError

from retrieval import evaluation
from retrieval.finetune import pipeline
from retrieval.finetune.evaluate import format_table
from retrieval.finetune.runs import ProgressDisplay


class Command(BaseCommand):
    help = (
        "Fine-tune the embedder on the indexed corpus (synthetic queries, hard negatives, contrastive training), "
        "evaluate it on held-out documents against the serving model, BM25 and hybrid, save it as a retriever "
        "version, and switch search to it when it is better by RAG_FINETUNE_MIN_GAIN. Budgets default to the "
        "RAG_FINETUNE_* settings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-steps", type=int, help="Training steps at most.")
        parser.add_argument("--minutes", type=float, help="Training minutes at most.")
        parser.add_argument("--llm-queries", type=int, help="Passages given to the LLM for a question.")
        parser.add_argument("--ict-queries", type=int, help="Inverse Cloze Task pairs.")
        parser.add_argument("--keyword-queries", type=int, help="Terse keyword queries (no model).")
        parser.add_argument("--situation-queries", type=int, help="Situations told in a paragraph (no model).")
        parser.add_argument("--batch-size", type=int, help="Training batch size.")
        parser.add_argument("--heldout-share", type=float, help="Share of documents held out for evaluation.")
        parser.add_argument("--seed", type=int, help="Seed of the split, the samples and the training.")
        parser.add_argument("--min-gain", type=float, help="Relative recall@10 gain needed to switch.")
        parser.add_argument(
            "--labelled",
            help="Extra held-out queries: JSON lines as for evaluate_retrieval "
            "(kept when all their relevant documents or chunks are held out).",
        )
        parser.add_argument(
            "--no-switch", action="store_true", help="Evaluate and save, but do not switch search over."
        )

    def handle(
        self,
        *args,
        max_steps,
        minutes,
        llm_queries,
        ict_queries,
        keyword_queries,
        situation_queries,
        batch_size,
        heldout_share,
        seed,
        min_gain,
        labelled,
        no_switch,
        **options,
    ):
        extra = []
        if labelled:
            try:
                with open(labelled, encoding="utf-8") as handle:
                    extra = evaluation.parse_labels(handle, source=labelled)
            except OSError as exc:
                raise CommandError(f"{labelled}: {exc.strerror}") from None
            except evaluation.LabelError as exc:
                raise CommandError(str(exc)) from None
        opts = pipeline.Options.from_settings(
            max_steps=max_steps,
            max_minutes=minutes,
            llm_queries=llm_queries,
            ict_queries=ict_queries,
            keyword_queries=keyword_queries,
            situation_queries=situation_queries,
            batch_size=batch_size,
            heldout_share=heldout_share,
            seed=seed,
            min_gain=min_gain,
            switch=not no_switch,
            labelled=extra,
        )
        try:
            version = pipeline.start(opts, progress=ProgressDisplay(self.stdout))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("")
        metrics = version.metrics
        self.stdout.write(f"Retriever {version.name}: {version.path}")
        self.stdout.write(
            f"{metrics['queries']} held-out queries over {metrics['passages']} held-out passages; "
            f"training pairs {version.pairs}"
        )
        self.stdout.write(format_table(metrics["methods"]))
        decision = metrics["decision"]
        gain = "n/a" if decision["gain"] is None else f"{decision['gain']:+.1%}"
        verdict = f"recall@10 {decision['finetuned_recall']:.3f} vs {decision['serving_recall']:.3f} ({decision['serving']}): {gain}"
        if version.is_active:
            self.stdout.write(self.style.SUCCESS(f"{verdict}. Search now uses {version.name}."))
        elif decision["better"] and version.error:
            self.stdout.write(self.style.ERROR(f"{verdict}. Better, but the switch failed: {version.error}"))
        elif decision["better"]:
            self.stdout.write(self.style.SUCCESS(f"{verdict}. Better; not switched (--no-switch)."))
        else:
            self.stdout.write(
                self.style.WARNING(f"{verdict}; needed {decision['min_gain']:+.1%}. Kept {decision['serving']}.")
            )
        self.stdout.write(f"Report: {version.path.rsplit('/', 1)[0]}/report.md")
