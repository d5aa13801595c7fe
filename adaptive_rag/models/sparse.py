"""BM25 sparse vectors from `qdrant_edge.Bm25`, used for both stores so that the embedded and
the server index rank identically.

Document vectors carry the saturated, length-normalised term frequency
    w(t, d) = tf(t, d) * (k + 1) / (tf(t, d) + k * (1 - b + b * |d| / avg_len)),
query vectors weight each unique term 1.0, and Qdrant's IDF modifier multiplies at search time by
    idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))
over the live collection, so score(q, d) = sum over shared terms of idf(t) * w(t, d): Okapi BM25.
Tokenisation: lowercase words, English stop words removed, Snowball English stemming.
"""

from __future__ import annotations

from dataclasses import dataclass

from adaptive_rag.types import SparseVec


@dataclass(frozen=True)
class Bm25Params:
    k: float = 1.2
    b: float = 0.75
    avg_len: float = 90.0


class Bm25Encoder:
    def __init__(self, params: Bm25Params = Bm25Params()):
        from qdrant_edge import Bm25, Bm25Config

        self.params = params
        self._model = Bm25(Bm25Config(k=params.k, b=params.b, avg_len=params.avg_len, language="english"))

    def encode_document(self, text: str) -> SparseVec:
        vector = self._model.embed_document(text)
        return SparseVec(tuple(vector.indices), tuple(vector.values))

    def encode_query(self, text: str) -> SparseVec:
        vector = self._model.embed_query(text)
        return SparseVec(tuple(vector.indices), tuple(vector.values))
