"""Generation's Celery tasks: fine-tuning the answer model and switching versions."""

from celery import shared_task

from generation import generator_versions
from generation.finetune import pipeline


@shared_task(acks_late=True, ignore_result=True)
def finetune_generator(version_id: int) -> None:
    """A fine-tuning run queued from the admin; progress goes on the row."""
    if pipeline.claim(version_id):  # a redelivered task finds the run taken and does nothing
        pipeline.run(version_id, pipeline.Options.from_settings())


@shared_task(acks_late=True, ignore_result=True)
def switch_generator(version_id: int) -> None:
    """Answer with a generator version, or roll back to an earlier one."""
    generator_versions.switch_to(version_id)


@shared_task(acks_late=True, ignore_result=True)
def fit_answerability(reason: str, version_id: int | None = None) -> None:
    """Fit the answerability model: the version queued from the admin
    (`version_id`), or a refit asked for when the corpus or the retriever
    changed (gate_versions.request_refit), done only when the serving gate is
    still stale, so that a queue of requests fits once."""
    from generation import fitting, gate_versions

    if version_id is not None:
        if gate_versions.claim(version_id):  # a redelivered task finds the fit taken
            fitting.run(version_id)
        return
    gate_versions.refit_started()
    why = fitting.stale()
    if why:
        fitting.start(f"{reason}; {why}")
