import json

from django.core.management.base import BaseCommand, CommandError

from retrieval import search


class Command(BaseCommand):
    help = "Search the index. One query as an argument, or many from a JSON-lines file (--queries)."

    def add_arguments(self, parser):
        parser.add_argument("query", nargs="?", help="The query.")
        parser.add_argument("-k", type=int, default=None, help="How many passages.")
        parser.add_argument("--json", action="store_true", help="Print JSON.")
        parser.add_argument("--collection", action="append", help="Limit to a collection (repeatable).")
        parser.add_argument(
            "--by-document",
            action="store_true",
            help="The k best documents, each as its best passage and up to 2 more of its passages.",
        )
        parser.add_argument(
            "--queries",
            help='JSON-lines file: each line {"query": "..."} or a JSON string; prints one JSON line per query.',
        )

    def handle(self, *args, query, k, json: bool, collection, queries, by_document: bool, **options):
        if bool(query) == bool(queries):
            raise CommandError("Give either a query or --queries FILE.")
        if by_document:
            if queries:
                raise CommandError("--by-document takes one query, not --queries.")
            return self._documents(query, k, json, collection)
        try:
            if queries:
                texts = list(self._read(queries))
                results = search.search_many(texts, k=k, collections=collection)  # the model loads once
                for text, hits in zip(texts, results):
                    self.stdout.write(_json({"query": text, "results": [h.as_dict() for h in hits]}))
                return
            hits = search.search(query, k=k, collections=collection)
        except search.SearchError as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_json({"query": query, "results": [h.as_dict() for h in hits]}))
            return
        if not hits:
            self.stdout.write("No results.")
        for hit in hits:
            where = f"{hit.filename}" + (f", page {hit.page}" if hit.page else "")
            self.stdout.write(
                self.style.SUCCESS(
                    f"{hit.rank}. {hit.score:.3f}  {hit.title} ({where}) [doc {hit.document_id}, chunk {hit.chunk_id}]"
                )
            )
            self.stdout.write("   " + " ".join(hit.text.split())[:300])

    def _documents(self, query, k, json, collection):
        try:
            results = search.search_documents(query, k=k, collections=collection)
        except search.SearchError as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_json({"query": query, "results": results}))
            return
        if not results:
            self.stdout.write("No results.")
        for result in results:
            where = result["filename"] + (f", page {result['page']}" if result["page"] else "")
            self.stdout.write(
                self.style.SUCCESS(f"{result['rank']}. {result['score']:.3f}  {result['title']} ({where})")
            )
            for passage in [result, *result["passages"]]:
                self.stdout.write("   - " + " ".join(passage["text"].split())[:200])

    def _read(self, path):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise CommandError(f"{path}:{number}: not JSON") from None
                text = item.get("query") if isinstance(item, dict) else item
                if not isinstance(text, str) or not text.strip():
                    raise CommandError(f'{path}:{number}: expected {{"query": "..."}}')
                yield text


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
