"""Toxicity classifiers behind one small interface; the one in use is a dotted
path in settings.RAG_GUARDRAIL_BACKEND, loaded lazily once per process."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Protocol

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string


class ToxicityClassifier(Protocol):
    def score(self, texts: Sequence[str]) -> list[float]:
        """Probability in [0, 1] that each text is toxic."""


class ProfanityCheckClassifier:
    """alt-profanity-check: TF-IDF + calibrated linear SVM shipped in the package."""

    @classmethod
    def from_settings(cls, settings):
        return cls()

    def score(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        from profanity_check import predict_prob

        return [float(p) for p in predict_prob(list(texts))]


class TransformersToxicityClassifier:
    """A local Hugging Face sequence classifier (e.g. a BERT toxicity model folder).
    The toxic probability is the softmax mass of labels whose name says toxic,
    or of label 1 for a binary model without such names."""

    TOXIC_WORDS = ("toxic", "offensive", "hate", "abusive", "insult", "obscene", "profan")

    def __init__(self, model_path: str):
        self.model_path = model_path
        self._model = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.RAG_GUARDRAIL_MODEL)

    def _load(self):
        with self._lock:
            if self._model is None:
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
                model = AutoModelForSequenceClassification.from_pretrained(
                    self.model_path, local_files_only=True
                ).eval()
                labels = {int(i): str(name).lower() for i, name in model.config.id2label.items()}
                toxic = [
                    i
                    for i, name in labels.items()
                    if any(w in name for w in self.TOXIC_WORDS) and "non" not in name and "not" not in name
                ]
                if not toxic:
                    toxic = [1] if len(labels) == 2 else list(labels)
                self._model = (tokenizer, model, toxic)
        return self._model

    def score(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        import torch

        tokenizer, model, toxic = self._load()
        with torch.inference_mode():
            batch = tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")
            logits = model(**batch).logits
            if model.config.problem_type == "multi_label_classification":
                probs = torch.sigmoid(logits)[:, toxic].max(dim=1).values
            else:
                probs = torch.softmax(logits, dim=-1)[:, toxic].sum(dim=1)
        return [float(p) for p in probs]


@functools.lru_cache(maxsize=1)
def get_classifier() -> ToxicityClassifier:
    return import_string(settings.RAG_GUARDRAIL_BACKEND).from_settings(settings)


@receiver(setting_changed)
def _clear(setting, **kwargs):
    if setting.startswith("RAG_GUARDRAIL"):
        get_classifier.cache_clear()


def is_toxic(score: float) -> bool:
    return score >= settings.RAG_TOXICITY_THRESHOLD
