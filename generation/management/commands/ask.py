import json

from django.core.management.base import BaseCommand, CommandError

from generation import services
from retrieval.search import SearchError


class Command(BaseCommand):
    help = "Ask a question; print the answer with its cited passages."

    def add_arguments(self, parser):
        parser.add_argument("question")
        parser.add_argument("--json", action="store_true", help="Print JSON.")
        parser.add_argument("--collection", action="append", help="Limit to a collection (repeatable).")

    def handle(self, *args, question, json: bool, collection, **options):
        if len(question) > services.MAX_QUESTION_CHARS:
            raise CommandError(
                f"The question is {len(question):,} characters long; ask in at most "
                f"{services.MAX_QUESTION_CHARS:,} (the API and the chat take no longer ones)."
            )
        try:
            result = services.ask(question, collections=collection)
        except SearchError as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_dumps(result.as_dict()))
            return
        if result.kind == "quoted":
            self.stdout.write(self.style.WARNING("Quoted from the documents: " + result.notice))
        self.stdout.write(result.answer)
        if result.citations:
            self.stdout.write("")
        for c in result.citations:
            where = c["filename"] + (f", page {c['page']}" if c["page"] else "")
            quote = (
                " ".join(c["quote"][slice(*c["highlight"][0])].split())
                if c["highlight"]
                else " ".join(c["quote"].split())
            )
            self.stdout.write(f"[{c['number']}] {c['title']} ({where}): " + quote[:300])
        if result.kind == "not_found" and result.passages:
            self.stdout.write("\nClosest passages:")
            for p in result.passages:
                self.stdout.write(f"- {p['title']} ({p['filename']}): " + " ".join(p["text"].split())[:200])


def _dumps(value):
    return json.dumps(value, ensure_ascii=False)
