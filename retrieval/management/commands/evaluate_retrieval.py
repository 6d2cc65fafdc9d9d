import json

from django.core.management.base import BaseCommand, CommandError

from retrieval import evaluation, search


class Command(BaseCommand):
    help = (
        "Score retrieval on labelled queries: recall@k, MRR and nDCG@k for dense, BM25 and hybrid search. "
        'QUERIES is JSON lines, each {"query": "...", "relevant_chunk_ids": [...]} or '
        '{"query": "...", "relevant_document_ids": [...]} (a document is found when any of its chunks is).'
    )

    def add_arguments(self, parser):
        parser.add_argument("queries", help="JSON-lines file of labelled queries.")
        parser.add_argument("-k", type=int, default=10, help="Passages retrieved per query (default 10).")
        parser.add_argument("--collection", action="append", help="Limit to a collection (repeatable).")
        parser.add_argument("--json", action="store_true", help="Print JSON, with per-query results.")

    def handle(self, *args, queries, k, collection, json: bool, **options):
        try:
            with open(queries, encoding="utf-8") as handle:
                labelled = evaluation.parse_labels(handle, source=queries)
            report = search.evaluate_retrieval(labelled, k, collections=collection)
        except OSError as exc:
            raise CommandError(f"{queries}: {exc.strerror}") from None
        except (evaluation.LabelError, search.SearchError) as exc:
            raise CommandError(str(exc)) from None
        if json:
            report["summary"] = {name: m.as_dict() for name, m in report["summary"].items()}
            self.stdout.write(_json(report))
            return
        self.stdout.write(evaluation.format_table(report["summary"], k, report["queries"]))


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
