import json

from django.core.management.base import BaseCommand, CommandError

from generation import evaluation, services
from retrieval.search import SearchError


class Command(BaseCommand):
    help = (
        "Run the real answer path on labelled questions and score it: answer holds the fact, cited passage holds it, "
        "wrong-but-cited, abstention on unanswerable, false abstention, latency. QUESTIONS is JSON lines, each "
        '{"question": "...", "answers": ["..."], "document": "file name", "answerable": true} or '
        '{"question": "...", "answerable": false}.'
    )

    def add_arguments(self, parser):
        parser.add_argument("questions", help="JSON-lines file of labelled questions.")
        parser.add_argument("-k", type=int, help="Passages retrieved for each answer (default RAG_ANSWER_PASSAGES).")
        parser.add_argument("--collection", action="append", help="Limit to a collection (repeatable).")
        parser.add_argument("--json", action="store_true", help="Print JSON, with a row per question.")
        parser.add_argument(
            "--split",
            choices=["dev", "test", "all"],
            default="all",
            help="Only the dev part of the set (tune on it) or the test part (report it); each question's part is "
            "fixed by its id.",
        )

    def handle(self, *args, questions, k, collection, json: bool, split: str, **options):
        try:
            with open(questions, encoding="utf-8") as handle:
                labelled = evaluation.in_split(evaluation.parse_questions(handle, source=questions), split)
        except OSError as exc:
            raise CommandError(f"{questions}: {exc.strerror}") from None
        except evaluation.LabelError as exc:
            raise CommandError(str(exc)) from None
        if k is not None and k < 1:
            raise CommandError("-k must be at least 1.")
        progress = None if json else (lambda done, total: self.stderr.write(f"\r{done}/{total}", ending=""))
        try:
            report = services.evaluate_answers(labelled, k=k, collections=collection, progress=progress)
        except SearchError as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_json(report))
            return
        self.stderr.write("")
        self.stdout.write(evaluation.format_table(report["summary"]))


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
