"""A pre-generation router between the panel's weak and strong model, in the style of RouteLLM's
similarity-weighted router (Ong et al. 2024): a new question is routed like the labelled
questions most similar to it.

Training data: questions answered by both models (records of `always_weak_rag` and
`always_strong_rag` on the same questions, train/dev splits only). Label y = 1, "the weak model
suffices", when the weak answer is correct (F1 >= 0.5) or the strong one is not (escalating
would not help); 0 when only the strong model is right.

Prediction: with q the L2-normalised query embedding and x_i the training questions',
  s_i = q . x_i for the k most similar questions,  w_i = softmax(s_i / TEMPERATURE),
  P(weak suffices | q) = sum_i w_i y_i.
The policy `knn_router` sends the question to the strong model when that is below its threshold.
Stored as `<data_dir>/routers/<name>/router.npz` (vectors, labels) + `meta.json` (embedder, k,
counts), checked against the serving embedder when loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from adaptive_rag.errors import ConfigError, NotFoundError
from adaptive_rag.limits import check_artifact_name
from gatekeeper.router import Router, RouterRun, RouterVerdict

TEMPERATURE = 0.05
CORRECT_F1 = 0.5


def routers_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "routers"


def read_stored(path: Path, what: str, fmt: int) -> dict:
    """A stored router file's JSON (`what`: "panel router", "answer probe", ...); ConfigError when
    it cannot be read or was written in another format than `fmt`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc}") from None
    if data.get("format") != fmt:
        raise ConfigError(f"{path}: {what} format {data.get('format')!r}, this version reads {fmt}")
    return data


@dataclass
class KnnRouter(Router):
    """The kNN weak/strong router (slot `weak_strong`): P(weak_suffices). Loaded as `knn:NAME`."""

    kind = "knn"
    stage = "knn_router"
    vectors: np.ndarray  # (n, dim), rows L2-normalised
    labels: np.ndarray  # (n,) 1.0 = the weak model suffices
    k: int
    embedder: str

    def p_weak_suffices(self, query_vector: Sequence[float]) -> float:
        q = np.asarray(query_vector, dtype=np.float32)
        q = q / (np.linalg.norm(q) or 1.0)
        sims = self.vectors @ q
        top = np.argsort(-sims, kind="stable")[: self.k]
        w = np.exp((sims[top] - sims[top].max()) / TEMPERATURE)
        return float((w * self.labels[top]).sum() / w.sum())

    @classmethod
    def load(cls, name: str, data_dir: Path, embedder) -> "KnnRouter":
        router = load(data_dir, name)
        router.check_compatible(embedder.name, embedder.dim)
        return router

    @property
    def label(self) -> str:
        return f"knn k={self.k} ({len(self.labels)} questions)"

    def verdict(self, run: RouterRun) -> RouterVerdict:
        p = self.p_weak_suffices(run.retrieval().query_vector)
        return RouterVerdict({"weak_suffices": p}, None, signals={"p_weak_suffices": p})

    def check_compatible(self, embedder: str, dim: int) -> None:
        if embedder != self.embedder or dim != self.vectors.shape[1]:
            raise ConfigError(f"the weak/strong router was trained with embedder {self.embedder} "
                              f"({self.vectors.shape[1]}-d), the server uses {embedder} ({dim}-d): retrain it")

    def save(self, data_dir: Path, name: str) -> Path:
        folder = routers_dir(data_dir) / checked_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "router.partial.npz"
        np.savez(tmp, vectors=self.vectors, labels=self.labels)
        tmp.replace(folder / "router.npz")
        meta = {"name": name, "k": self.k, "embedder": self.embedder, "questions": int(len(self.labels)),
                "weak_suffices": float(self.labels.mean()) if len(self.labels) else None, "temperature": TEMPERATURE}
        (folder / "meta.json").write_text(json.dumps(meta, indent=2))
        return folder


def checked_name(name: str) -> str:
    return check_artifact_name(name, "router")


def exists(data_dir: Path, name: str) -> bool:
    return (routers_dir(data_dir) / checked_name(name) / "meta.json").is_file()


def load(data_dir: Path, name: str) -> KnnRouter:
    folder = routers_dir(data_dir) / checked_name(name)
    if not (folder / "meta.json").is_file():
        raise NotFoundError(f"no weak/strong router {name!r} (train one with `arag gatekeeper knn`)")
    meta = json.loads((folder / "meta.json").read_text())
    arrays = np.load(folder / "router.npz")
    return KnnRouter(arrays["vectors"], arrays["labels"], int(meta["k"]), meta["embedder"])


def labels_from_records(records: Sequence[dict]) -> list[tuple[str, float]]:
    """(question, y) for the questions answered by both always_weak_rag and always_strong_rag."""
    weak = {r["id"]: r for r in records if r["policy"] == "always_weak_rag"}
    strong = {r["id"]: r for r in records if r["policy"] == "always_strong_rag"}
    out = []
    for qid in sorted(weak.keys() & strong.keys()):
        weak_ok, strong_ok = weak[qid]["f1"] >= CORRECT_F1, strong[qid]["f1"] >= CORRECT_F1
        out.append((weak[qid]["question"], 1.0 if weak_ok or not strong_ok else 0.0))
    return out


def train(labelled: Sequence[tuple[str, float]], embed: Callable[[str], Sequence[float]], embedder: str,
          k: int = 10) -> KnnRouter:
    if not labelled:
        raise ConfigError("no question was answered by both always_weak_rag and always_strong_rag")
    vectors = np.array([embed(q) for q, _ in labelled], dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return KnnRouter(vectors, np.array([y for _, y in labelled], dtype=np.float32), min(k, len(labelled)), embedder)
