from pathlib import PurePath

from django.db import migrations


def readable_titles(apps, schema_editor):
    """Documents titled with their file's slug ("support-faq") get the title
    the upload would give them now (ingestion/titles.py): their first section
    heading, else their name in words."""
    from ingestion import titles

    Document = apps.get_model("ingestion", "Document")
    Chunk = apps.get_model("ingestion", "Chunk")
    for document in Document.objects.only("pk", "title", "original_filename").iterator():
        stem = PurePath(document.original_filename).stem
        if document.title != stem or not titles.is_slug(stem):
            continue
        headings = list(
            Chunk.objects.filter(document_id=document.pk).exclude(heading="").order_by("ordinal")
            .values_list("heading", flat=True)[:3]
        )
        title = titles.best("", [h.split(" › ")[0] for h in headings], document.original_filename)
        Document.objects.filter(pk=document.pk).update(title=title)


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0003_document_attempts")]

    operations = [migrations.RunPython(readable_titles, migrations.RunPython.noop)]
