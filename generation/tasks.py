"""Generation's Celery tasks: fine-tuning the answer model and switching versions."""

from celery import shared_task

from generation import generators
from generation.finetune import pipeline


@shared_task(acks_late=True, ignore_result=True)
def finetune_generator(version_id: int) -> None:
    """A fine-tuning run queued from the admin; progress goes on the row."""
    if pipeline.claim(version_id):  # a redelivered task finds the run taken and does nothing
        pipeline.run(version_id, pipeline.Options.from_settings())


@shared_task(acks_late=True, ignore_result=True)
def switch_generator(version_id: int) -> None:
    """Answer with a generator version, or roll back to an earlier one."""
    generators.switch_to(version_id)
