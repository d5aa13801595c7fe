"""Deterministic fakes that subclass the real interfaces."""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from adaptive_rag.models.embedder import DenseEmbedder

_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder(DenseEmbedder):
    """Hashed bag of words, L2-normalised: texts sharing words are close. No model, no threads."""

    name = "fake-bow"
    dim = 64
    max_tokens = 10_000

    def __init__(self) -> None:
        self.documents_embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % self.dim
            vec[bucket] += 1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            norm = 1.0
        return vec / norm

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.documents_embedded += len(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(text.split())
