from celery import shared_task

from retrieval import services


@shared_task(acks_late=True, ignore_result=True)
def remove_vectors(chunk_ids: list[int]) -> None:
    services.remove_chunks(chunk_ids)


@shared_task(acks_late=True, ignore_result=True)
def rebuild_index() -> None:
    services.rebuild_index()
