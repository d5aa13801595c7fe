"""A trained gatekeeper on disk, and the object the query path asks for probabilities.

Layout: `<data_dir>/gatekeepers/<name>/v<N>/` with `meta.json` (model, label set, feature groups
and names, embedder, training-data hash, temperature, metrics) and `model.pkl` (the classifier and
the two probe calibrators). Versions only grow; `latest` is the highest. Loading checks that the
serving embedder and feature list are the ones it was trained with: a mismatch is a clear error,
never silently wrong probabilities.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from adaptive_rag.errors import ConfigError, NotFoundError
from adaptive_rag.limits import check_artifact_name
from gatekeeper.calibration import ProbeCalibrator, softmax
from gatekeeper.classifiers import Classifier
from gatekeeper.features import answer_signals, feature_names, router_inputs, vectorize
from gatekeeper.router import Router, RouterRun, RouterVerdict, displayed

LABELS = ("closed_book", "rag", "long_context", "none")
FORMAT = 1


def gatekeepers_dir(data_dir: Path) -> Path:
    return data_dir / "gatekeepers"


def check_name(name: str) -> str:
    return check_artifact_name(name, "gatekeeper")


def versions(data_dir: Path, name: str) -> list[int]:
    root = gatekeepers_dir(data_dir) / check_name(name)
    if not root.is_dir():
        return []
    return sorted(int(p.name[1:]) for p in root.iterdir() if re.fullmatch(r"v\d+", p.name) and (p / "meta.json").is_file())


def list_gatekeepers(data_dir: Path) -> list[dict]:
    root = gatekeepers_dir(data_dir)
    out = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        for v in versions(data_dir, path.name):
            out.append(json.loads((path / f"v{v}" / "meta.json").read_text()))
    return out


@dataclass
class Gatekeeper(Router):
    """The gatekeeper router (slot `gatekeeper`): P(label) for closed_book, rag, long_context and
    none from the router inputs (and from the closed-book draft's log-probs when trained on them),
    plus two calibrators of answer correctness. Loaded as `gatekeeper:NAME` or `gatekeeper:NAME@vN`."""

    kind = "gatekeeper"
    stage = "gatekeeper"
    meta: dict
    classifier: Classifier
    draft_calibrator: ProbeCalibrator  # closed-book draft signals -> P(draft correct)
    rag_calibrator: ProbeCalibrator  # RAG answer signals -> P(RAG answer correct)
    # training questions with held-out (cross-fitted) probabilities and their route outcomes:
    # what `arag calibrate --gatekeeper` replays; written at save, not loaded for serving
    heldout: list[dict] | None = None

    @property
    def label(self) -> str:
        version = self.meta.get("version")
        return f"{self.meta['name']}@v{version}" if version else f"{self.meta['name']}@unsaved"

    def probabilities(self, inputs: Mapping) -> dict[str, float]:
        x = vectorize(inputs, self.meta["feature_groups"], self.meta["feature_names"])[None, :]
        logits = self.classifier.logits(x, [inputs["query"]])
        p = softmax(logits, self.meta["temperature"])[0]
        return {label: float(v) for label, v in zip(self.meta["labels"], p)}

    @classmethod
    def load(cls, name: str, data_dir: Path, embedder) -> "Gatekeeper":
        base, _, version = name.partition("@")
        if version and not re.fullmatch(r"v?\d+", version):
            raise ConfigError(f"gatekeeper {name!r}: write NAME or NAME@vN")
        gk = load_gatekeeper(Path(data_dir), base, int(version.lstrip("v")) if version else None)
        gk.check_compatible(embedder.name, embedder.dim)
        return gk

    def verdict(self, run: RouterRun) -> RouterVerdict:
        retrieval = run.retrieval()
        # an artifact trained on the draft's log-probs needs the draft before it can decide
        probe = run.closed_book().signals if "probe" in self.meta["feature_groups"] else None
        inputs = router_inputs(run.query, retrieval, probe)
        probs = self.probabilities(inputs)
        return RouterVerdict(probs, max(probs, key=probs.get), displayed(inputs))

    def p_answer_correct(self, which: str, signals: Mapping, unanswerable: bool) -> float:
        calibrator = self.draft_calibrator if which == "draft" else self.rag_calibrator
        return calibrator(answer_signals(signals, unanswerable))

    def check_compatible(self, embedder_name: str, embedding_dim: int) -> None:
        if self.meta["embedder"] != embedder_name:
            raise ConfigError(f"gatekeeper {self.label} was trained with embedder {self.meta['embedder']!r}, "
                              f"but this engine embeds with {embedder_name!r}: retrain it (`arag gatekeeper train`)")
        expected = feature_names(self.meta["feature_groups"], embedding_dim)
        if expected != self.meta["feature_names"]:
            raise ConfigError(f"gatekeeper {self.label} expects {len(self.meta['feature_names'])} features that this "
                              f"version computes differently ({len(expected)}): retrain it")

    def save(self, data_dir: Path) -> Path:
        """Writes the next version atomically (a .partial directory renamed into place)."""
        name = check_name(self.meta["name"])
        version = (versions(data_dir, name) or [0])[-1] + 1
        self.meta = {**self.meta, "version": version, "format": FORMAT}
        target = gatekeepers_dir(data_dir) / name / f"v{version}"
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with open(tmp / "model.pkl", "wb") as handle:
            pickle.dump({"classifier": self.classifier, "draft": self.draft_calibrator, "rag": self.rag_calibrator}, handle)
        if self.heldout is not None:
            (tmp / "heldout.jsonl").write_text("".join(json.dumps(row) + "\n" for row in self.heldout))
        (tmp / "meta.json").write_text(json.dumps(self.meta, indent=2))
        tmp.rename(target)
        return target


def load_gatekeeper(data_dir: Path, name: str, version: int | None = None) -> Gatekeeper:
    available = versions(data_dir, name)
    if not available:
        raise NotFoundError(f"no gatekeeper named {name!r} in {gatekeepers_dir(data_dir)} (train one: `arag gatekeeper train`)")
    chosen = version if version is not None else available[-1]
    if chosen not in available:
        raise NotFoundError(f"gatekeeper {name!r} has no version {chosen} (versions: {available})")
    directory = gatekeepers_dir(data_dir) / name / f"v{chosen}"
    meta = json.loads((directory / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise ConfigError(f"gatekeeper {name}@v{chosen} has format {meta.get('format')}; this version reads {FORMAT}")
    try:
        # written by `arag gatekeeper train` into the user's own data directory
        with open(directory / "model.pkl", "rb") as handle:
            parts = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, AttributeError, ModuleNotFoundError) as exc:
        raise ConfigError(f"gatekeeper {name}@v{chosen}: unreadable model.pkl ({exc})") from exc
    return Gatekeeper(meta, parts["classifier"], parts["draft"], parts["rag"])


def training_hash(rows: list[dict]) -> str:
    import hashlib

    payload = json.dumps(sorted((r["id"], r["collection"], r["label"]) for r in rows))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def label_index(labels: list[str]) -> np.ndarray:
    return np.array([LABELS.index(label) for label in labels], dtype=int)
