"""The panel router: before any answer is generated, choose (route, model) for a question from
what retrieval and the question's form say, weighing the chance each choice is right against
its price. `adaptive` runs it (adaptive_rag/query/policies.py).

Actions (ACTIONS): abstain ("the collection does not answer this", no model call), closed-book on
the reader or on the strong model, RAG on the reader or on the strong model (CORE_ACTIONS, which
every label row has), and multi-step retrieval on the reader or on the strong model (trained when
the label rows have their outcomes: `always_multi_step`, `strong_multi_step` runs). Actions whose
model is not in the serving panel, or that the router was not trained for, are never chosen.

Training data (`labels_from_records` + `build_labels`): questions answered by the fixed policies
of every action (always_abstain, closed_book, strong_closed_book, always_weak_rag,
always_strong_rag) in `arag eval` runs on train/dev splits, with the router inputs
(gatekeeper/features.py: form, retrieval signals, query embedding) computed by one retrieval per
question. A label file holds everything training needs, so training runs without a collection
or a model (the shipped default is trained from committed labels).

Model: per action, a logistic regression on standardised features for P(action correct), correct
= F1 >= 0.5 (for abstain: the question is one nothing in the collection answers). The inverse
regularisation strength C of each is chosen by 5-fold cross-validated log-loss; the held-out
(cross-fitted) probabilities of every training question are kept for calibration reports.

Choice: utility(a) = P(a correct) - cost_weight * cost(a) / cost(the router's priciest action), the
costs being the mean price-weighted cost per query of each action in training; the highest
utility wins (ties: the cheaper action). cost_weight = 0 buys the most likely right answer at
any price; larger values trade accuracy for price (threshold `adaptive_cost_weight`).

Stored as `<dir>/panel_router.json` (plain numbers, no pickle): per action the scaler, the
coefficients, the intercept, the mean cost and tokens; the feature names, the embedder and the
training metrics. Loading checks the embedder and the feature list.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from adaptive_rag.errors import ConfigError, NotFoundError
from gatekeeper.features import router_inputs
from gatekeeper.knn_router import checked_name, read_stored, routers_dir  # one routers/ folder and one name rule for both routers
from gatekeeper.router import Router, RouterRun, RouterVerdict, displayed

# action -> (route, panel role or None, the fixed policy whose records give its outcome)
ACTIONS: dict[str, tuple[str, str | None, str]] = {
    "abstain": ("abstain", None, "always_abstain"),
    "closed_book:reader": ("closed_book", "reader", "closed_book"),
    "closed_book:strong": ("closed_book", "strong", "strong_closed_book"),
    "rag:reader": ("rag", "reader", "always_weak_rag"),
    "rag:strong": ("rag", "strong", "always_strong_rag"),
    "multi_step:reader": ("multi_step", "reader", "always_multi_step"),
    "multi_step:strong": ("multi_step", "strong", "strong_multi_step"),
}
# the actions every label row must have; the others (multi-step) are trained when every row has them
CORE_ACTIONS = ("abstain", "closed_book:reader", "closed_book:strong", "rag:reader", "rag:strong")
GROUPS = ("form", "retrieval", "embedding")  # the default feature groups (`train`'s `groups`)
CORRECT_F1 = 0.5
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
FOLDS = 5
FORMAT = 1


@dataclass
class ActionModel:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    cost: float  # mean price-weighted cost per query in training ($)
    tokens: float
    c: float = 1.0

    def p_correct(self, x: np.ndarray) -> float:
        z = float(((x - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@dataclass
class PanelRouter(Router):
    """The panel router (slot `panel`): P(correct) of every action and the action with the best
    utility. Loaded as `panel:NAME` (`default`: the one trained into the data directory, else the
    one shipped with the package)."""

    kind = "panel"
    stage = "panel_router"
    actions: dict[str, ActionModel]
    feature_names: list[str]
    embedder: str
    meta: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"panel router {self.meta.get('name', '?')} ({self.meta.get('questions', '?')} questions)"

    @classmethod
    def load(cls, name: str, data_dir: Path, embedder) -> "PanelRouter":
        router = load_named(data_dir, name)
        router.check_compatible(embedder.name, embedder.dim)
        return router

    def verdict(self, run: RouterRun) -> RouterVerdict:
        inputs = router_inputs(run.query, run.retrieval())
        probs = self.probabilities(inputs)
        return choice_verdict(probs, {a: m.cost for a, m in self.actions.items()}, run, displayed(inputs))

    def probabilities(self, inputs: Mapping) -> dict[str, float]:
        """P(correct) of every action for one query's router inputs."""
        from gatekeeper.features import vectorize

        x = vectorize(inputs, self.groups, self.feature_names)
        return {a: m.p_correct(x) for a, m in self.actions.items()}

    @property
    def groups(self) -> tuple[str, ...]:
        """The feature groups it was trained with (routers saved before groups were recorded: GROUPS)."""
        return tuple(self.meta.get("groups") or GROUPS)

    def choose(self, probs: Mapping[str, float], available: Iterable[str], cost_weight: float) -> tuple[str, dict]:
        return choose(probs, {a: m.cost for a, m in self.actions.items()}, available, cost_weight)

    def check_compatible(self, embedder: str, dim: int) -> None:
        want = sum(1 for n in self.feature_names if n.startswith("emb_"))
        if embedder != self.embedder or (want and dim != want):
            raise ConfigError(f"the panel router was trained with embedder {self.embedder} ({want}-d), the server "
                              f"uses {embedder} ({dim}-d): retrain it (arag gatekeeper panel)")

    def to_json(self) -> dict:
        return {"format": FORMAT, "embedder": self.embedder, "feature_names": self.feature_names, "meta": self.meta,
                "actions": {a: {"mean": _r(m.mean), "scale": _r(m.scale), "coef": _r(m.coef),
                                "intercept": round(m.intercept, 8), "cost": m.cost, "tokens": m.tokens, "c": m.c}
                            for a, m in self.actions.items()}}

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "panel_router.json.partial"
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        tmp.replace(folder / "panel_router.json")
        return folder / "panel_router.json"


def _r(a: np.ndarray) -> list[float]:
    return [round(float(v), 8) for v in a]


SHIPPED = Path(__file__).parent / "default_router" / "panel_router.json"
SHIPPED_LABELS = "eval/results/labels/mixed-panel"  # in the repository: what SHIPPED was trained on


def find(data_dir: Path, name: str) -> Path | None:
    """Where the router `name` is: trained into the data directory, else (for "default") shipped."""
    trained = routers_dir(data_dir) / checked_name(name) / "panel_router.json"
    if trained.is_file():
        return trained
    return SHIPPED if name == "default" and SHIPPED.is_file() else None


def load_named(data_dir: Path, name: str) -> PanelRouter:
    """The panel router `name` (`find`), unchecked; NotFoundError when there is none."""
    path = find(data_dir, name)
    if path is None:
        raise NotFoundError(f"no panel router {name!r}: none is shipped or trained (arag gatekeeper panel --labels DIR)")
    return load(path)


def load(path: Path) -> PanelRouter:
    """A saved router (`panel_router.json`, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "panel_router.json"
    data = read_stored(path, "panel router", FORMAT)
    actions = {a: ActionModel(np.array(m["mean"]), np.array(m["scale"]), np.array(m["coef"]), float(m["intercept"]),
                              float(m["cost"]), float(m["tokens"]), float(m.get("c", 1.0)))
               for a, m in data["actions"].items()}
    unknown = set(actions) - set(ACTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown actions {sorted(unknown)}")
    return PanelRouter(actions, list(data["feature_names"]), data["embedder"], data.get("meta", {}))


def choose(probs: Mapping[str, float], costs: Mapping[str, float], available: Iterable[str],
           cost_weight: float) -> tuple[str, dict[str, float]]:
    """The available action with the highest utility P(correct) - cost_weight * cost / max cost
    (ties go to the cheaper action); returns it and every available action's utility. The max is
    over every action the router knows, available or not, so a cost weight means the same with
    or without a strong model in the panel."""
    available = [a for a in ACTIONS if a in set(available) and a in probs]
    if not available:
        raise ConfigError("the panel router has no action the serving panel can run")
    top = max(costs.values()) or 1.0
    utility = {a: probs[a] - cost_weight * costs[a] / top for a in available}
    best = max(available, key=lambda a: (round(utility[a], 12), -costs[a]))
    return best, utility


def available_actions(has_strong: bool) -> list[str]:
    return [a for a, (_, role, _) in ACTIONS.items() if role != "strong" or has_strong]


def choice_verdict(probs: Mapping[str, float], costs: Mapping[str, float], run: RouterRun,
                   inputs: Mapping) -> RouterVerdict:
    """The verdict of a router that scores ACTIONS: the `choose` rule at the request's
    `adaptive_cost_weight`, over the actions the serving panel can run."""
    weight = run.threshold("adaptive_cost_weight")
    action, utility = choose(probs, costs, available_actions(run.has_model("strong")), weight)
    return RouterVerdict(probs, action, inputs, thresholds={"adaptive_cost_weight": weight},
                         signals={"probabilities": dict(probs), "utility": utility, "costs": dict(costs), **inputs})


# ---- labels --------------------------------------------------------------------------------------

def labels_from_records(records: Sequence[Mapping]) -> list[dict]:
    """One row per question that every core action's fixed policy answered (CORE_ACTIONS): id,
    question, kind, split-free outcomes {action: {f1, tokens, cost}}, with the other actions'
    outcomes where their policies answered too. Questions missing a core action are left out."""
    policy_action = {policy: a for a, (_, _, policy) in ACTIONS.items()}
    by_id: dict[str, dict] = {}
    for r in records:
        action = policy_action.get(r["policy"])
        if action is None:
            continue
        row = by_id.setdefault(r["id"], {"id": r["id"], "question": r["question"], "kind": r.get("kind"), "outcomes": {}})
        row["outcomes"][action] = {"f1": r["f1"], "tokens": r["total_tokens"], "cost": r["cost"]}
    return [row for _, row in sorted(by_id.items()) if all(a in row["outcomes"] for a in CORE_ACTIONS)]


def trained_actions(rows: Sequence[Mapping]) -> list[str]:
    """The actions a router is fitted for on these label rows: those every row has an outcome of."""
    return [a for a in ACTIONS if rows and all(a in r["outcomes"] for r in rows)]


def slim_inputs(inputs: Mapping) -> dict:
    """Router inputs as stored in a label file (floats rounded, so the file stays small and diffs)."""
    out = dict(inputs)
    out["query_vector"] = [round(float(v), 5) for v in inputs.get("query_vector") or []]
    out["dense_scores"] = [round(float(v), 6) for v in inputs["dense_scores"]]
    out["bm25_scores"] = [round(float(v), 6) for v in inputs["bm25_scores"]]
    out.pop("probe", None)
    return out


def training_hash(rows: Sequence[Mapping]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps([row["id"], row["outcomes"], row["inputs"]], sort_keys=True).encode())
    return h.hexdigest()[:16]


# ---- training ------------------------------------------------------------------------------------

def _folds(n: int, seed: int, folds: int = FOLDS) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::folds] for i in range(folds)]


def fit_logistic(X: np.ndarray, y: np.ndarray, c: float, seed: int, max_iter: int = 2000):
    """(mean, scale, coef, intercept): a logistic regression of y on X standardised by X's own mean
    and standard deviation; one class only gives its shrunk rate as a constant."""
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    if y.min() == y.max():  # one class only: a constant probability, slightly shrunk
        p = (y.sum() + 0.5) / (len(y) + 1.0)
        return mean, scale, np.zeros(X.shape[1]), math.log(p / (1 - p))
    model = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
    model.fit((X - mean) / scale, y)
    return mean, scale, model.coef_[0].copy(), float(model.intercept_[0])


def _predict(params, X: np.ndarray) -> np.ndarray:
    mean, scale, coef, intercept = params
    z = ((X - mean) / scale) @ coef + intercept
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _cross_fitted(X: np.ndarray, y: np.ndarray, c: float, seed: int) -> np.ndarray:
    out = np.zeros(len(y))
    for held in _folds(len(y), seed):
        train = np.setdiff1d(np.arange(len(y)), held)
        out[held] = _predict(fit_logistic(X[train], y[train], c, seed), X[held])
    return out


def strong_given_reader(rows: Sequence[Mapping]) -> dict | None:
    """How often the strong model's RAG answer is right overall, where the reader's RAG answer was
    wrong, and where it was right, on label rows: the strong model is less often right exactly
    where the reader fails (on the shipped router's `mixed` train labels 0.40 against 0.50
    overall), which escalating a doubted reader answer must count (query/policies.py,
    conditional_strong). None without both outcomes."""
    pairs = [(r["outcomes"]["rag:reader"]["f1"] >= CORRECT_F1, r["outcomes"]["rag:strong"]["f1"] >= CORRECT_F1)
             for r in rows if {"rag:reader", "rag:strong"} <= set(r["outcomes"])]
    wrong = [s for reader, s in pairs if not reader]
    right = [s for reader, s in pairs if reader]
    if not wrong or not right:
        return None
    return {"overall": sum(s for _, s in pairs) / len(pairs), "reader_wrong": sum(wrong) / len(wrong),
            "reader_right": sum(right) / len(right), "questions": len(pairs)}


def train(rows: Sequence[Mapping], embedder: str, name: str = "default", seed: int = 0,
          groups: Sequence[str] = GROUPS) -> tuple[PanelRouter, list[dict]]:
    """Fit every action's model on label rows (each with `inputs` and `outcomes`) with the feature
    `groups` (gatekeeper/features.py; `retrieval_norm` needs rows whose inputs carry the
    collection's profile). Returns the router and, per question, the cross-fitted P(correct) of
    every action (for reports)."""
    from gatekeeper.calibration import auroc, reliability
    from gatekeeper.features import feature_names, vectorize

    if len(rows) < 2 * FOLDS:
        raise ConfigError(f"{len(rows)} labelled questions: the panel router needs at least {2 * FOLDS}")
    dim = len(rows[0]["inputs"].get("query_vector") or [])
    groups = tuple(groups)
    if "embedding" not in groups:
        dim = 0
    names = feature_names(groups, dim)
    X = np.array([vectorize(r["inputs"], groups, names) for r in rows])
    actions, heldout, metrics = {}, [dict(id=r["id"], kind=r.get("kind"), probabilities={}) for r in rows], {}
    for action in trained_actions(rows):
        y = np.array([float(r["outcomes"][action]["f1"] >= CORRECT_F1) for r in rows])
        scores = {c: _log_loss(_cross_fitted(X, y, c, seed), y) for c in C_GRID}
        c = min(C_GRID, key=lambda v: (round(scores[v], 9), v))
        cross = _cross_fitted(X, y, c, seed)
        mean, scale, coef, intercept = fit_logistic(X, y, c, seed)
        costs = [r["outcomes"][action]["cost"] for r in rows]
        tokens = [r["outcomes"][action]["tokens"] for r in rows]
        actions[action] = ActionModel(mean, scale, coef, intercept, float(np.mean(costs)), float(np.mean(tokens)), c)
        for h, p in zip(heldout, cross):
            h["probabilities"][action] = float(p)
        metrics[action] = {"c": c, "positive_rate": float(y.mean()), "log_loss": scores[c],
                           "ece": reliability(cross, y).ece, "auroc": auroc(cross, y.astype(bool))}
    meta = {"name": name, "questions": len(rows), "training_hash": training_hash(rows), "seed": seed, "groups": list(groups),
            "strong_given_reader": strong_given_reader(rows),
            "correct_if_f1_at_least": CORRECT_F1, "cross_validated": metrics,
            "kinds": {k: sum(1 for r in rows if r.get("kind") == k) for k in sorted({str(r.get("kind")) for r in rows})}}
    return PanelRouter(actions, names, embedder, meta), heldout

