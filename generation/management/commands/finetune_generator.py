from django.core.management.base import BaseCommand, CommandError

from generation import evaluation, generator_versions
from generation.finetune import pipeline
from generation.models import GeneratorVersion
from retrieval.finetune.runs import ProgressDisplay


class Command(BaseCommand):
    help = (
        "Fine-tune the answer model on the indexed corpus (questions for facts of the training documents, their "
        "evidence among retrieved distractors or absent, verified target answers), export it to GGUF, judge it on "
        "held-out documents with the real answer path against the serving model, and switch answers to it when it "
        "is better by RAG_GENERATOR_FINETUNE_MIN_GAIN. --switch VERSION switches (or rolls back) instead; "
        "--list lists the versions. Budgets default to the RAG_GENERATOR_FINETUNE_* settings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-steps", type=int, help="Training steps at most.")
        parser.add_argument("--minutes", type=float, help="Minutes for the run's questions and training at most.")
        parser.add_argument("--facts", type=int, help="Facts of the training documents asked about.")
        parser.add_argument("--llm-questions", type=int, help="Of them, how many the LLM writes a question for.")
        parser.add_argument("--heldout-questions", type=int, help="Held-out questions written to judge the run.")
        parser.add_argument("--absent-share", type=float, help="Share of examples without the right evidence.")
        parser.add_argument(
            "--positions", choices=["random", "ranked"], help="Where the fact goes among the distractors."
        )
        parser.add_argument("--seed", type=int, help="Seed of the split, the samples and the training.")
        parser.add_argument("--min-gain", type=float, help="Gain in 'answer holds the fact' needed to switch.")
        parser.add_argument(
            "--labelled",
            help="Labelled questions (JSON lines as for evaluate_answers): those whose document is held out, and "
            "the unanswerable ones, judge the run too.",
        )
        parser.add_argument("--no-switch", action="store_true", help="Evaluate and save, but do not switch.")
        parser.add_argument("--switch", metavar="VERSION", help="Switch answers to VERSION (v1, ..., or packaged).")
        parser.add_argument("--list", action="store_true", help="List the generator versions.")

    def handle(self, *args, labelled, no_switch, switch, list: bool, **options):
        if list:
            return self._list()
        if switch:
            return self._switch(switch)
        extra = []
        if labelled:
            try:
                with open(labelled, encoding="utf-8") as handle:
                    extra = evaluation.parse_questions(handle, source=labelled)
            except OSError as exc:
                raise CommandError(f"{labelled}: {exc.strerror}") from None
            except evaluation.LabelError as exc:
                raise CommandError(str(exc)) from None
        opts = pipeline.Options.from_settings(
            max_steps=options["max_steps"],
            max_minutes=options["minutes"],
            facts=options["facts"],
            llm_questions=options["llm_questions"],
            heldout_questions=options["heldout_questions"],
            absent_share=options["absent_share"],
            positions=options["positions"],
            seed=options["seed"],
            min_gain=options["min_gain"],
            switch=not no_switch,
            labelled=extra,
        )
        try:
            version = pipeline.start(opts, progress=ProgressDisplay(self.stdout))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("")
        metrics, training = version.metrics, version.training
        self.stdout.write(f"Generator {version.name}: {version.path}")
        self.stdout.write(f"Examples: {version.examples['by_kind']}; dropped: {version.examples['dropped']}")
        self.stdout.write(
            f"Training: {training['steps']} steps, {training['tokens_per_second']} tokens/s ({training['dtype']}), "
            f"loss {training['first_loss']} -> {training['last_loss']}; export {metrics['export']}"
        )
        self.stdout.write(f"{metrics['questions']} held-out questions ({metrics['labelled']} labelled):")
        for side in ("before", "after"):
            self.stdout.write(f"  {side}: " + ", ".join(f"{k} {metrics[side].get(k)}" for k in _SHOWN))
        decision = metrics["decision"]
        verdict = f"holds the fact {decision['gain']:+.3f} against {decision['against']}"
        if version.is_active:
            self.stdout.write(self.style.SUCCESS(f"{verdict}. Answers now use {version.name}."))
        elif decision["better"]:
            self.stdout.write(self.style.SUCCESS(f"{verdict}. Better; not switched. {version.error}".strip()))
        else:
            self.stdout.write(self.style.WARNING(f"{verdict}: {'; '.join(decision['reasons'])}. Not switched."))

    def _list(self):
        generator_versions.packaged_version()
        for version in GeneratorVersion.objects.order_by("number"):
            gain = version.metrics.get("decision", {}).get("gain")
            self.stdout.write(
                f"{version.name:<9} {version.get_status_display():<38} "
                f"{'' if gain is None else f'gain {gain:+.3f}'}  {version.path}"
            )

    def _switch(self, name: str):
        generator_versions.packaged_version()
        version = GeneratorVersion.objects.filter(name=name).first()
        if version is None:
            raise CommandError(f"No generator version {name!r} (see --list).")
        try:
            generator_versions.switch_to(version.pk)
        except generator_versions.SwitchError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Answers now use {version.name}."))


_SHOWN = ("holds_fact", "wrong_cited", "false_abstention", "abstained", "latency_p50")
