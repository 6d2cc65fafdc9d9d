from django.core.management.base import BaseCommand, CommandError

from retrieval import indexing, passage_forms, stores, versions


class Command(BaseCommand):
    help = (
        "Rebuild the serving index from the chunks stored in the database. With --form, move it to that "
        "passage form instead (contextual: embedded and BM25-indexed with the document title and heading path; "
        "text: the text alone): a new index is built while the old one serves, then switched in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--form", choices=passage_forms.FORMS, help="Move the serving index to this passage form.")

    def handle(self, *args, form=None, **options):
        progress = lambda done, total: self.stdout.write(f"\r  {done}/{total} chunks", ending="")  # noqa: E731
        if form is None:
            count = indexing.rebuild_index(progress=progress)
            self.stdout.write(f"\nRebuilt the index with {count} vectors.")
            return
        active = stores.active_retriever()
        if active["form"] == form:
            self.stdout.write(f"The serving index ({active['name']}) already reads passages in the {form} form.")
            return
        try:
            count = versions.switch_retriever(active["name"], active["model"], progress=progress, form=form)
        except (RuntimeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"\nSearches now use {active['name']} with {form} passages ({count} vectors).")
