"""A trained internal-state probe: P(the answer is wrong) from one layer of the answering model's
hidden states (eval/probe_labels.py collects them; `arag gatekeeper probe` trains one).

Kinds: `prompt`, the state at the prompt's last token (before generating), and `answer`, the mean
of the states over the answer's tokens (after generating). Model: a logistic regression on
standardised states, P(wrong) = 1 / (1 + exp(-(((x - mean) / scale) . coef + intercept))).

A probe reads one model's states as one engine computes them, so it is keyed by the model file's
sha256, the engine and its dtype, and the layer; `check_serves` refuses any other combination (a
probe of another model, or of the same model in float32 rather than bfloat16, would give numbers
that look right and mean nothing). Stored as plain numbers in
`<data dir>/routers/<name>/answer_probe.json` (no pickle), beside the routers.

An answer probe may carry a **combiner**: a second logistic regression, stacked on the first, that
reads the state probe's logit together with the answer's output signals (COMBINER_SIGNALS: token
log-probs, entropy, the refusal word's log-prob, retrieval support, answer length). It is fitted on
out-of-fold state-probe predictions of the training questions, so it learns how far to trust the
states against the output. The engine computes only the state part; the query core combines
(`combined_p_wrong`), because the output signals exist only once the answer does.

Serving (setting `answer_probes`, ARAG_ANSWER_PROBES): each named probe is attached to the panel
model whose file, engine and dtype it was trained on (`attach`), and that engine reads the layer
from the answer's own generation, so the probe costs no second pass; the answer's stage then
records `probe_p_wrong` (answer kind) or `probe_pre_p_wrong` (prompt kind). Engines that cannot
read hidden states (llama.cpp, openai) refuse a probe at start.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adaptive_rag.errors import ConfigError, NotFoundError
from gatekeeper.knn_router import checked_name, read_stored, routers_dir
from gatekeeper.panel_router import fit_logistic

FORMAT = 1
KINDS = ("prompt", "answer")
FILE = "answer_probe.json"
SIGNALS = {"answer": "probe_p_wrong", "prompt": "probe_pre_p_wrong"}
# the answer's output signals a combiner reads beside the state probe (names as in the RAG stage's
# signals and the probe labels' rows)
COMBINER_SIGNALS = ("min_logprob", "first_logprob", "mean_logprob", "mean_entropy", "refusal_logprob", "support",
                    "answer_tokens")


@dataclass
class AnswerProbe:
    kind: str
    layer: int
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    model_sha256: str
    engine: str
    dtype: str
    meta: dict = field(default_factory=dict)
    # {"signals": [...], "mean", "scale", "coef": [logit(state P) + signals], "intercept"}; None: states alone
    combiner: dict | None = None

    def p_wrong(self, state) -> float:
        """P(the answer is wrong) for one hidden state (this probe's kind and layer)."""
        z = float(((np.asarray(state, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def combined_p_wrong(self, p_state: float, values) -> float:
        """P(wrong) from the state probe's P(wrong) and the answer's output signals (`values`, a
        mapping by name; a missing one counts as its training mean). Without a combiner, p_state."""
        if not self.combiner:
            return p_state
        c = self.combiner
        p = min(max(float(p_state), 1e-6), 1 - 1e-6)
        mean = np.asarray(c["mean"], dtype=np.float64)
        x = np.array([math.log(p / (1 - p))] + [values.get(name) if values.get(name) is not None else mean[i + 1]
                                                  for i, name in enumerate(c["signals"])], dtype=np.float64)
        z = float(((x - mean) / np.asarray(c["scale"])) @ np.asarray(c["coef"]) + c["intercept"])
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    @property
    def signal(self) -> str:
        """The stage signal this probe's P(wrong) is recorded as."""
        return SIGNALS[self.kind]

    @property
    def fingerprint(self) -> str:
        """A short hash of what the engine computes with the probe (its numbers, layer, kind and
        model; not its meta or combiner, which the query core applies): generations made with it
        are cached under it."""
        numbers = {k: v for k, v in self.to_json().items() if k not in ("meta", "combiner")}
        return hashlib.sha256(json.dumps(numbers, sort_keys=True).encode()).hexdigest()[:12]

    def escalation_rates(self, threshold: float) -> tuple[float, float] | None:
        """(P(P(wrong) >= threshold | the answer is right), the same | wrong): how often a
        verifier at `threshold` escalates right and wrong answers, from the probe's cross-fitted
        predictions on its training questions (meta "escalation_rates", made by `arag gatekeeper
        probe`; linear between the stored thresholds). None for a probe trained without them."""
        grid = self.meta.get("escalation_rates")
        return interpolate_rates(grid, threshold) if grid else None

    def check_serves(self, model_sha256: str, engine: str, dtype: str) -> None:
        """ConfigError unless the serving model, engine and dtype are the ones it was trained on."""
        want = (self.model_sha256, self.engine, self.dtype)
        if (model_sha256, engine, dtype) != want:
            raise ConfigError(f"the answer probe was trained on model {self.model_sha256[:12]}... on {self.engine} "
                              f"{self.dtype}; this model is {str(model_sha256)[:12]}... on {engine} {dtype}: "
                              "retrain it on this model's states (arag gatekeeper probe)")

    def to_json(self) -> dict:
        return {"format": FORMAT, "kind": self.kind, "layer": self.layer, "model_sha256": self.model_sha256,
                "engine": self.engine, "dtype": self.dtype, "intercept": self.intercept, "meta": self.meta,
                **{k: [round(float(v), 8) for v in getattr(self, k)] for k in ("mean", "scale", "coef")},
                **({"combiner": self.combiner} if self.combiner else {})}

    def save(self, data_dir: Path, name: str) -> Path:
        folder = routers_dir(data_dir) / checked_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (FILE + ".partial")
        tmp.write_text(json.dumps(self.to_json()))
        tmp.replace(folder / FILE)
        return folder / FILE


def load(data_dir: Path, name: str) -> AnswerProbe:
    path = routers_dir(data_dir) / checked_name(name) / FILE
    if not path.is_file():
        raise NotFoundError(f"no answer probe {name!r} (train one: arag gatekeeper probe --labels DIR --name {name})")
    data = read_stored(path, "answer probe", FORMAT)
    return AnswerProbe(data["kind"], int(data["layer"]), np.array(data["mean"]), np.array(data["scale"]),
                       np.array(data["coef"]), float(data["intercept"]), data["model_sha256"], data["engine"],
                       data["dtype"], data.get("meta", {}), data.get("combiner"))


RATE_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(21))


def interpolate_rates(table: list[dict], threshold: float) -> tuple[float, float]:
    """(P(escalate | right), P(escalate | wrong)) at `threshold` from a `rates_table`, linear
    between its thresholds (beyond them, the end values)."""
    ts = [row["threshold"] for row in table]
    return (float(np.interp(threshold, ts, [row["if_right"] for row in table])),
            float(np.interp(threshold, ts, [row["if_wrong"] for row in table])))


def rates_table(p_wrong: np.ndarray, wrong: np.ndarray) -> list[dict]:
    """The escalation rates of `escalation_rates` at thresholds 0, 0.05, ..., 1 from (cross-fitted)
    predictions and outcomes."""
    p_wrong, wrong = np.asarray(p_wrong, float), np.asarray(wrong, bool)
    return [{"threshold": t, "if_right": float(np.mean(p_wrong[~wrong] >= t)) if (~wrong).any() else 0.0,
             "if_wrong": float(np.mean(p_wrong[wrong] >= t)) if wrong.any() else 0.0} for t in RATE_THRESHOLDS]


def combiner_features(p_state: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """A combiner's inputs: the logit of the state probe's P(wrong), then the output signals
    (columns in COMBINER_SIGNALS order; NaN where missing, filled with the column's mean)."""
    p = np.clip(np.asarray(p_state, dtype=np.float64), 1e-6, 1 - 1e-6)
    S = np.asarray(signals, dtype=np.float64)
    fill = np.array([np.nanmean(col) if np.isfinite(col).any() else 0.0 for col in S.T])
    return np.column_stack([np.log(p / (1 - p)), np.where(np.isfinite(S), S, fill)])


def fit_combiner(p_state: np.ndarray, signals: np.ndarray, wrong: np.ndarray, c: float = 1.0, seed: int = 0) -> dict:
    """A combiner (see the module docstring) from out-of-fold state-probe P(wrong) and the output
    signals (`combiner_features`)."""
    X = combiner_features(p_state, signals)
    mean, scale, coef, intercept = fit_logistic(X, np.asarray(wrong, dtype=float), c, seed, max_iter=3000)
    return {"signals": list(COMBINER_SIGNALS), "c": c, "intercept": float(intercept),
            **{k: [round(float(v), 8) for v in arr] for k, arr in (("mean", mean), ("scale", scale), ("coef", coef))}}


def fit(X: np.ndarray, wrong: np.ndarray, c: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, coef, intercept) of a logistic regression of `wrong` on standardised X (the
    panel router's fit, panel_router.fit_logistic, with more iterations for hundreds of features)."""
    return fit_logistic(X, wrong.astype(float), c, seed, max_iter=3000)


def attach(names, models, data_dir: Path) -> dict[str, AnswerProbe]:
    """Load each named probe and attach it to the panel model it was trained on (same model file
    sha256, engine and dtype); ConfigError when no panel model matches, or when that model's
    engine cannot read hidden states. Returns name -> probe."""
    from adaptive_rag.models.minilm_export import sha256_file

    attached: dict[str, AnswerProbe] = {}
    hashes: dict[str, tuple] = {}
    for name in names:
        probe = load(data_dir, name)
        for lm in models.all().values():
            if getattr(lm, "engine", None) != probe.engine or getattr(lm, "dtype", None) != probe.dtype:
                continue
            path = Path(lm.model_file)
            if lm.name not in hashes:
                hashes[lm.name] = sha256_file(path) if path.is_file() else None
            if hashes[lm.name] == probe.model_sha256:
                lm.attach_probe(probe)
                attached[name] = probe
                break
        else:
            panel = ", ".join(f"{lm.name} ({lm.label})" for lm in models.all().values())
            raise ConfigError(f"answer probe {name!r} was trained on model file {probe.model_sha256[:12]}... on "
                              f"{probe.engine} {probe.dtype}; no panel model is that file on that engine "
                              f"(panel: {panel})")
    return attached
