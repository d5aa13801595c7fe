"""The gatekeeper model registry. Every model maps (feature matrix, query texts) to logits over the
label set, so temperature scaling and the router treat them alike.

- `logreg` (default): standardised features, L2 logistic regression. With a few hundred labelled
  queries and a 384-d embedding, a strongly regularised linear model is what the data supports.
- `mlp`: one hidden layer (sklearn), early stopping; for when labels number in the thousands.
- `knn`: distance-weighted neighbours in standardised feature space; the baseline that shows
  whether the learned models generalise beyond "similar questions had this label".
- `minilm`: the ingest embedder's MiniLM fine-tuned as a sequence classifier on the question text
  (transformers, from the offline weights), its logits stacked with the other features by a
  logistic regression. Minutes on a CPU; only worth it with more labels than a session collects.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np


class Classifier(ABC):
    name: str

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, texts: Sequence[str], n_classes: int, seed: int) -> "Classifier":
        """y holds class indices 0..n_classes-1."""

    @abstractmethod
    def logits(self, X: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """(n, n_classes) unnormalised log-probabilities."""

    def save(self, directory: Path) -> None:
        with open(directory / "model.pkl", "wb") as handle:
            pickle.dump(self, handle)

    @staticmethod
    def load(directory: Path) -> "Classifier":
        # The artifact is written by `arag gatekeeper train` into the user's own data directory.
        with open(directory / "model.pkl", "rb") as handle:
            return pickle.load(handle)


def _full_log_proba(model, X: np.ndarray, n_classes: int) -> np.ndarray:
    """log P over all classes, also when a class never occurred in training (P floor 1e-6)."""
    proba = np.full((X.shape[0], n_classes), 1e-6)
    proba[:, model.classes_] = np.clip(model.predict_proba(X), 1e-6, 1.0)
    return np.log(proba / proba.sum(axis=1, keepdims=True))


class _Sklearn(Classifier):
    @abstractmethod
    def _estimator(self, seed: int, n: int):
        """The sklearn estimator behind the scaler, sized for `n` training rows."""

    def fit(self, X, y, texts, n_classes, seed):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.n_classes = n_classes
        self.model = make_pipeline(StandardScaler(), self._estimator(seed, len(y)))
        self.model.fit(X, y)
        return self

    def logits(self, X, texts):
        return _full_log_proba(self.model, X, self.n_classes)


class LogisticGatekeeper(_Sklearn):
    name = "logreg"

    def __init__(self, C: float = 0.05):
        self.C = C

    def _estimator(self, seed, n):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=2000, random_state=seed)


class MlpGatekeeper(_Sklearn):
    name = "mlp"

    def _estimator(self, seed, n):
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(32,), alpha=1.0, max_iter=500, random_state=seed,
                             early_stopping=n >= 100, validation_fraction=0.2)


class KnnGatekeeper(_Sklearn):
    name = "knn"

    def _estimator(self, seed, n):
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=min(15, max(1, n // 4)), weights="distance")


class MiniLmGatekeeper(Classifier):
    """Fine-tunes MiniLM on the question text; its out-of-fold logits join the other features."""

    name = "minilm"

    def __init__(self, model_dir: str | None = None, epochs: int = 4, max_length: int = 64):
        self.model_dir = model_dir
        self.epochs = epochs
        self.max_length = max_length

    def _base_dir(self) -> str:
        if self.model_dir:
            return self.model_dir
        from adaptive_rag.models.minilm_export import bundled_weights_dir, verify_weights

        src = bundled_weights_dir()
        verify_weights(src)  # the same pinned files the embedder uses
        return str(src)

    def _train_encoder(self, texts, y, n_classes, seed):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        torch.manual_seed(seed)
        tokenizer = AutoTokenizer.from_pretrained(self._base_dir())
        model = AutoModelForSequenceClassification.from_pretrained(self._base_dir(), num_labels=n_classes)
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-5, weight_decay=0.01)
        order = np.random.default_rng(seed)
        model.train()
        for _ in range(self.epochs):
            for batch in np.array_split(order.permutation(len(texts)), max(1, len(texts) // 16)):
                enc = tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt")
                loss = model(**enc, labels=torch.tensor(y[batch], dtype=torch.long)).loss
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        model.eval()
        return tokenizer, model

    def _encoder_logits(self, tokenizer, model, texts) -> np.ndarray:
        import torch

        with torch.inference_mode():
            enc = tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            return torch.log_softmax(model(**enc).logits, dim=-1).numpy()

    def fit(self, X, y, texts, n_classes, seed):
        from sklearn.model_selection import StratifiedKFold

        self.n_classes = n_classes
        texts = list(texts)
        # out-of-fold encoder logits, so the stacker never sees logits of questions the encoder trained on
        oof = np.zeros((len(texts), n_classes))
        folds = min(3, int(np.bincount(y).min())) if len(set(y)) > 1 else 1
        if folds >= 2:
            for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
                tok, model = self._train_encoder([texts[i] for i in train], y[train], n_classes, seed)
                oof[held] = self._encoder_logits(tok, model, [texts[i] for i in held])
        self.tokenizer, self.encoder = self._train_encoder(texts, y, n_classes, seed)
        self.stacker = LogisticGatekeeper().fit(np.hstack([X, oof]), y, texts, n_classes, seed)
        return self

    def logits(self, X, texts):
        return self.stacker.logits(np.hstack([X, self._encoder_logits(self.tokenizer, self.encoder, texts)]), texts)


CLASSIFIERS: dict[str, type[Classifier]] = {c.name: c for c in (LogisticGatekeeper, MlpGatekeeper, KnnGatekeeper, MiniLmGatekeeper)}
