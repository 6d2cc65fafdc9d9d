import json

from django.core.management.base import BaseCommand

from retrieval import indexing


class Command(BaseCommand):
    help = "Report vectors and BM25 entries missing from or extra to the database; --repair fixes them."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="Embed what is missing, remove what is extra.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument(
            "--recall",
            action="store_true",
            help="Also measure the vector index's recall@10 against exact search on a sample of its vectors "
            "(always done for a GPU_CAGRA index on Milvus).",
        )

    def handle(self, *args, repair, json: bool, recall: bool, **options):
        report = indexing.check_index(repair=repair, recall=recall)
        if json:
            self.stdout.write(_dumps(report))
            return
        self.stdout.write(
            f"{report['chunks']} searchable chunks; {report['vectors']} vectors; {report['bm25']} BM25 entries"
        )
        for key in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25"):
            ids = report[key]
            line = f"  {key.replace('_', ' ')}: {len(ids)}" + (
                f" (chunk ids {', '.join(map(str, ids[:10]))}{'…' if len(ids) > 10 else ''})" if ids else ""
            )
            self.stdout.write(line)
        if "recall@10" in report:
            line = f"  recall@10 against exact search (up to {indexing.RECALL_SAMPLE} of its vectors as queries): {report['recall@10']}"
            self.stdout.write(
                line if report["recall_ok"] else self.style.WARNING(line + f" (below {indexing.MIN_RECALL})")
            )
        if report["repaired"]:
            self.stdout.write(self.style.SUCCESS("Repaired."))
        elif any(report[k] for k in ("missing_vectors", "extra_vectors", "missing_bm25", "extra_bm25")):
            self.stdout.write(self.style.WARNING("Run with --repair to fix."))
        else:
            self.stdout.write(self.style.SUCCESS("The indexes match the database."))


def _dumps(value):
    return json.dumps(value)
