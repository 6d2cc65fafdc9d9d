"""Contrastive fine-tuning of the embedder with sentence-transformers. Pure: no Django.

(anchor, positive, negative) triplets, MultipleNegativesRankingLoss: each
query is scored against its positive, its hard negative and every other
passage of the batch (in-batch negatives), so batches are drawn without
duplicate texts (BatchSamplers.NO_DUPLICATES). The budget is a number of
steps and a number of minutes, whichever runs out first (a callback stops the
trainer). Seeds are fixed; on the GPU when there is one, else the CPU.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from core.env import hub_offline

log = logging.getLogger(__name__)

LEARNING_RATE = 2e-5
WARMUP_RATIO = 0.1
TRAIN_MAX_TOKENS = 128  # passages are about 100 of the embedder's tokens; queries fewer


@dataclass(frozen=True)
class TrainResult:
    steps: int
    max_steps: int
    seconds: float
    stopped_by: str  # "steps" or "minutes"
    loss: float | None  # mean training loss
    device: str
    examples: int

    def as_dict(self) -> dict:
        return asdict(self)


def train(
    base_model: str,
    triplets: Sequence[tuple[str, str, str]],
    output: str | Path,
    *,
    max_steps: int,
    max_minutes: float,
    batch_size: int,
    seed: int,
    learning_rate: float = LEARNING_RATE,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Fine-tune the model in folder `base_model` on (query, positive,
    negative) texts and save it to `output` (a sentence-transformers folder)."""
    if not triplets:
        raise ValueError("No training triplets")
    hub_offline()
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import set_seed

    set_seed(seed)
    cuda = torch.cuda.is_available()
    model = SentenceTransformer(base_model, device="cuda" if cuda else "cpu", local_files_only=True)
    served_max_tokens = model.max_seq_length
    dataset = Dataset.from_dict(
        {
            "anchor": [t[0] for t in triplets],
            "positive": [t[1] for t in triplets],
            "negative": [t[2] for t in triplets],
        }
    )
    model.max_seq_length = min(served_max_tokens, TRAIN_MAX_TOKENS)

    def serve_as_before():
        model.max_seq_length = served_max_tokens  # serve as the base model did

    return fit(
        model,
        dataset,
        output,
        what=f"Fine-tuned {base_model}",
        args_class=SentenceTransformerTrainingArguments,
        trainer_class=SentenceTransformerTrainer,
        loss=MultipleNegativesRankingLoss(model),
        max_steps=max_steps,
        max_minutes=max_minutes,
        batch_size=batch_size,
        seed=seed,
        learning_rate=learning_rate,
        warmup_steps=max(1, round(WARMUP_RATIO * max_steps)),
        cuda=cuda,
        progress=progress,
        before_save=serve_as_before,
    )


def fit(
    model,
    dataset,
    output,
    *,
    what: str,
    args_class,
    trainer_class,
    loss,
    max_steps: int,
    max_minutes: float,
    batch_size: int,
    seed: int,
    learning_rate: float,
    warmup_steps: int,
    cuda: bool,
    bf16: bool = False,
    progress=None,
    before_save=None,
) -> TrainResult:
    """Train a sentence-transformers model (an embedder or a cross-encoder,
    with its trainer and arguments classes) on `dataset` with `loss`:
    no-duplicate batches, seeds fixed, fp16 on CUDA (bf16 autocast on the CPU
    when asked), stopped by max_steps or max_minutes; saved to `output`."""
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import TrainerCallback

    examples = len(dataset)
    batch_size = min(batch_size, examples)
    started = time.monotonic()
    budget = _Budget(max_steps, max_minutes * 60, started, progress, TrainerCallback)
    with tempfile.TemporaryDirectory(prefix="finetune-") as scratch:
        args = args_class(
            output_dir=scratch,
            max_steps=max_steps,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_steps=warmup_steps,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            seed=seed,
            data_seed=seed,
            use_cpu=not cuda,
            fp16=cuda,
            bf16=bf16 and not cuda,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="steps",
            logging_steps=max(1, min(50, max_steps // 10)),
            report_to="none",
            disable_tqdm=True,
            dataloader_drop_last=examples >= 2 * batch_size,
        )
        trainer = trainer_class(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[budget.callback])
        state = trainer.train()
    seconds = time.monotonic() - started
    if before_save:
        before_save()
    Path(output).mkdir(parents=True, exist_ok=True)
    model.save(str(output))
    steps = int(state.global_step)
    loss_value = float(state.training_loss) if state.training_loss is not None else None
    device = "cuda" if cuda else "cpu"
    log.info("%s for %s steps in %.0f s (%s), mean loss %.4f", what, steps, seconds, device, loss_value or 0)
    return TrainResult(
        steps=steps,
        max_steps=max_steps,
        seconds=round(seconds, 2),
        stopped_by="minutes" if budget.timed_out else "steps",
        loss=loss_value,
        device=device,
        examples=examples,
    )


class _Budget:
    """Stops training after `max_seconds` (checked after every step) and reports progress."""

    def __init__(self, max_steps, max_seconds, started, progress, base_class):
        self.timed_out = False
        budget = self

        class Callback(base_class):
            def on_step_end(self, args, state, control, **kwargs):
                if progress:
                    progress(state.global_step, max_steps)
                if time.monotonic() - started >= max_seconds and state.global_step < max_steps:
                    budget.timed_out = True
                    control.should_training_stop = True
                return control

        self.callback = Callback()
