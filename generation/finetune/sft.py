"""Supervised fine-tuning of the generator on answer examples. Pure: no Django.

A full fine-tune with transformers and torch: SmolLM2-135M's weights and
AdamW's state fit in under 2 GB, so LoRA (peft) would save memory the
machine does not lack while adding a merge step before the GGUF export.
The loss is on the answer tokens only: the prompt (system message, numbered
evidence, question) is context, its labels -100. Seeds are fixed; training
stops at `max_steps` or `max_minutes`, whichever comes first, and the result
says which. bf16 autocast where the CPU computes bf16 natively (AVX-512 BF16
or AMX) and on CUDA; float32 elsewhere.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

IGNORE = -100  # labels of context tokens: no loss


@dataclass(frozen=True)
class TrainOptions:
    max_steps: int = 200
    max_minutes: float = 15.0
    batch_size: int = 4
    learning_rate: float = 5e-5
    warmup_steps: int = 10
    seed: int = 1234
    max_tokens: int = 1536  # a longer example is dropped, never cut (its answer would go)


@dataclass
class TrainResult:
    steps: int = 0
    examples_seen: int = 0
    tokens: int = 0  # all tokens the model read
    answer_tokens: int = 0  # the ones the loss was on
    seconds: float = 0.0  # in training steps (loading, encoding and saving not counted)
    stopped_by: str = ""  # steps | minutes
    device: str = "cpu"
    dtype: str = "float32"
    losses: list = field(default_factory=list)  # mean answer-token loss per step
    too_long: int = 0  # examples dropped for max_tokens

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        curve = self.losses
        every = max(1, len(curve) // 20)
        return {
            "steps": self.steps,
            "examples_seen": self.examples_seen,
            "tokens": self.tokens,
            "answer_tokens": self.answer_tokens,
            "seconds": round(self.seconds, 1),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "stopped_by": self.stopped_by,
            "device": self.device,
            "dtype": self.dtype,
            "too_long": self.too_long,
            "first_loss": round(curve[0], 4) if curve else None,
            "last_loss": round(sum(curve[-5:]) / len(curve[-5:]), 4) if curve else None,
            "loss_curve": [[i + 1, round(curve[i], 4)] for i in range(0, len(curve), every)],
        }


def _save(model, tokenizer, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def end_token(tokenizer) -> int:
    """The token that ends an assistant turn in the chat template (SmolLM2: <|im_end|>)."""
    token = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(token, int) and token != tokenizer.unk_token_id:
        return token
    return tokenizer.eos_token_id


def encode(tokenizer, messages: list[dict], target: str) -> tuple[list[int], list[int]]:
    """Token ids of the chat prompt followed by the target answer and the
    turn's end token, and labels that are IGNORE on every prompt token."""
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    answer_ids = tokenizer(target, add_special_tokens=False).input_ids + [end_token(tokenizer)]
    return prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids


def _batches(encoded: list, batch_size: int, seed: int):
    """Endless shuffled batches, a new order each epoch (seeded)."""
    rng = random.Random(seed)
    order = list(range(len(encoded)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [encoded[i] for i in order[start : start + batch_size]]


def train(
    checkpoint: str | Path,
    examples: Sequence[tuple[list[dict], str]],
    out_dir: str | Path,
    options: TrainOptions,
    progress: Callable[[int, int], None] | None = None,
    save_at: Sequence[int] = (),
) -> TrainResult:
    """Fine-tune the checkpoint on (messages, target) examples; save the model
    and tokenizer in out_dir (and, for a curve of gain against steps, in
    out_dir/step-N after each step N of `save_at`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from retrieval.embedding import cpu_has_fast_bf16

    started = time.monotonic()
    deadline = started + options.max_minutes * 60
    random.seed(options.seed)
    torch.manual_seed(options.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    use_bf16 = device == "cuda" or cpu_has_fast_bf16()
    result = TrainResult(device=device, dtype="bfloat16 autocast" if use_bf16 else "float32")

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32, local_files_only=True)
    model.to(device).train()
    model.config.use_cache = False
    encoded = []
    for messages, target in examples:
        ids, labels = encode(tokenizer, messages, target)
        if len(ids) > options.max_tokens:
            result.too_long += 1
            continue
        encoded.append((ids, labels))
    if not encoded:
        raise ValueError("No training example fits the token limit.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_token(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=0.0)
    warmup = max(1, min(options.warmup_steps, options.max_steps // 10 or 1))

    def rate(step):  # linear warm-up, then a cosine decay to a tenth over max_steps
        if step < warmup:
            return (step + 1) / warmup
        progress_share = (step - warmup) / max(1, options.max_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_share)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    batches = _batches(encoded, options.batch_size, options.seed)
    while True:
        if result.steps >= options.max_steps:
            result.stopped_by = "steps"
            break
        if time.monotonic() >= deadline:
            result.stopped_by = "minutes"
            break
        batch = next(batches)
        step_started = time.monotonic()
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, labs) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(labs)] = torch.tensor(labs)
            mask[row, : len(ids)] = 1
        input_ids, labels, mask = input_ids.to(device), labels.to(device), mask.to(device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.steps += 1
        result.examples_seen += len(batch)
        result.tokens += int(mask.sum())
        result.answer_tokens += int((labels != IGNORE).sum())
        result.losses.append(float(loss.detach()))
        result.seconds += time.monotonic() - step_started
        if progress:
            progress(result.steps, options.max_steps)
        if result.steps in save_at:
            paused = time.monotonic()
            _save(model, tokenizer, Path(out_dir) / f"step-{result.steps}")
            deadline += time.monotonic() - paused  # saving is not training time
    model.eval()
    _save(model, tokenizer, Path(out_dir))
    log.info(
        "Generator fine-tuned: %s steps in %.0f s (%.0f tokens/s, %s), loss %.3f -> %.3f",
        result.steps,
        result.seconds,
        result.tokens_per_second,
        result.dtype,
        result.losses[0] if result.losses else float("nan"),
        result.losses[-1] if result.losses else float("nan"),
    )
    return result
