from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.broker import workers_online
from ingestion import services, sweeps


class Command(BaseCommand):
    help = "Ingest files and folders (recursively); wait until each document is indexed or failed."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="Files or folders.")
        parser.add_argument("--collection", default=None, help="Collection name (default: the default collection).")
        parser.add_argument("--timeout", type=float, default=3600, help="Seconds to wait for a worker.")
        parser.add_argument("--inline", action="store_true", help="Process here even if a worker is running.")

    def handle(self, *args, paths, collection, timeout, inline, **options):
        files = list(self._files(paths))
        if not files:
            raise CommandError("No files found.")
        coll = services.get_collection(collection)
        # Ask before queueing: a solo-pool worker busy with our first document cannot answer.
        # Three asks of a second: a worker between two short tasks answers the next one.
        use_worker = not inline and workers_online(attempts=3)
        documents, skipped = [], []
        for path in files:
            with path.open("rb") as handle:
                document, created = services.add_document(handle, path.name, collection=coll)
            if created or not document.is_finished:
                documents.append(document)
            else:
                skipped.append((path, document))
        ids = [d.pk for d in documents]
        # A progress bar on a terminal (stderr); nothing when output is captured.
        self.bar = tqdm(total=len(ids), unit="doc", disable=None, leave=False, dynamic_ncols=True)
        try:
            if ids and use_worker:
                self.stdout.write(f"A worker is running: waiting for {len(ids)} document(s)…")
                finished = sweeps.wait_for(ids, timeout=timeout, on_progress=self._progress)
            else:
                if ids:
                    self.stdout.write(f"Processing {len(ids)} document(s) in this process…")
                for number, pk in enumerate(ids):
                    self.bar.set_postfix_str(documents[number].original_filename[:40])
                    services.process_document(pk)  # claims first: a worker that gets the task later skips it
                    self.bar.update(1)
                finished = sweeps.wait_for(ids, timeout=0)
        finally:
            self.bar.close()
        self._summary(finished, skipped)

    def _files(self, paths):
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            elif path.is_file():
                yield path
            else:
                raise CommandError(f"No such file or folder: {raw}")

    def _progress(self, documents):
        done = sum(d.is_finished for d in documents)
        chunks = sum(d.chunks_embedded for d in documents)
        total = sum(d.chunks_total for d in documents)
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix_str(f"{chunks}/{total} chunks embedded")

    def _summary(self, finished, skipped):
        indexed = [d for d in finished if d.status == "indexed"]
        failed = [d for d in finished if d.status == "failed"]
        waiting = [d for d in finished if not d.is_finished]
        self.stdout.write(
            f"indexed {len(indexed)}, skipped {len(skipped)} (already ingested), failed {len(failed)}"
            + (f", still processing {len(waiting)}" if waiting else "")
        )
        for document in indexed:
            self.stdout.write(f"  indexed  #{document.pk} {document.original_filename}: {document.chunks_total} chunks")
        for path, document in skipped:
            self.stdout.write(f"  skipped  {path} (same file as #{document.pk}, {document.status})")
        for document in failed:
            self.stdout.write(
                self.style.ERROR(f"  failed   #{document.pk} {document.original_filename}: {document.error}")
            )
