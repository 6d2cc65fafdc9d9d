from django.core.management.base import BaseCommand

from retrieval import indexing


class Command(BaseCommand):
    help = "Rebuild the vector index from the chunks stored in the database."

    def handle(self, *args, **options):
        count = indexing.rebuild_index(
            progress=lambda done, total: self.stdout.write(f"\r  {done}/{total} chunks", ending="")
        )
        self.stdout.write(f"\nRebuilt the index with {count} vectors.")
