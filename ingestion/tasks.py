from celery import shared_task

from ingestion import services


@shared_task(acks_late=True, ignore_result=True)
def process_document(document_id: int) -> None:
    services.process_document(document_id)
