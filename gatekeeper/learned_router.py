"""The learned router (kind `learned`, slot `panel`): a panel router whose P(correct) per action is
corrected on each collection's own traffic (gatekeeper/online.py: one posterior per collection and
action, so what one collection teaches does not move another), from versions kept in the decision
log, so every replica serves the same one.

`learned:NAME` serves the latest version of router NAME from the decision log's `router_states`
(adaptive_rag/decision_store/learning_sql.py). Before any version exists it serves its base, the
panel router `panel:default`, unchanged (version 0). A version holds the base router's spec and
training hash, one posterior per collection and action, and the id of the last outcome it learned from; versions
are made by gatekeeper/router_learning.py (`arag router learn`, the server after feedback,
`arag router rollback`). Replicas look for a newer version at most every `refresh_s` seconds.

The decision's `learned_router` stage records, like the panel router's `panel_router` stage, the
inputs, utilities and costs, the adjusted `probabilities` (what the choice used), the base
router's `base_probabilities` (what a later version learns from) and `router_version` ("NAME@vN").
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Mapping

from adaptive_rag.errors import ConfigError
from gatekeeper.features import router_inputs, vectorize
from gatekeeper.knn_router import checked_name
from gatekeeper.online import NORMALISED_FEATURES, RETRIEVAL_FEATURES, ActionPosterior, adjustment_vector
from gatekeeper.panel_router import PanelRouter, choice_verdict
from gatekeeper.router import Router, RouterRun, RouterVerdict, displayed

FORMAT = 1
DEFAULT_BASE = "panel:default"
REFRESH_S = 10.0


@dataclasses.dataclass
class LearnedState:
    """One version of a learned router, as stored (to_json / from_json: plain numbers)."""

    base: str
    base_training_hash: str | None
    collections: dict[str, dict[str, ActionPosterior]]  # collection -> action -> posterior
    last_outcome_id: int = 0
    learned_from: dict[str, float] = dataclasses.field(default_factory=dict)  # source -> outcomes used

    def posteriors(self, collection: str) -> dict[str, ActionPosterior]:
        """The posteriors learned on `collection` (none: the base router's view of it)."""
        return self.collections.get(collection, {})

    def to_json(self) -> dict:
        return {"format": FORMAT, "kind": "learned", "base": self.base, "base_training_hash": self.base_training_hash,
                "last_outcome_id": self.last_outcome_id, "learned_from": self.learned_from,
                "collections": {c: {a: p.to_json() for a, p in sorted(posts.items())}
                                for c, posts in sorted(self.collections.items())}}

    @classmethod
    def from_json(cls, data: Mapping, where: str) -> "LearnedState":
        if data.get("format") != FORMAT or data.get("kind") != "learned":
            raise ConfigError(f"{where}: not a learned router state of format {FORMAT}")
        try:
            collections = {c: {a: ActionPosterior.from_json(p) for a, p in posts.items()}
                           for c, posts in data["collections"].items()}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: unreadable action posterior ({exc})") from None
        return cls(data["base"], data.get("base_training_hash"), collections, int(data.get("last_outcome_id", 0)),
                   dict(data.get("learned_from") or {}))

    @classmethod
    def initial(cls, base_spec: str, base: PanelRouter) -> "LearnedState":
        return cls(base_spec, base.meta.get("training_hash"), {})


def adjustment_names(base: PanelRouter) -> tuple[str, ...]:
    """The retrieval features the corrections of `base` read: the raw ones (RETRIEVAL_FEATURES) or,
    for a base trained on the collection-normalised signals, those (NORMALISED_FEATURES)."""
    names = set(base.feature_names)
    for candidate in (RETRIEVAL_FEATURES, NORMALISED_FEATURES):
        if names.issuperset(candidate):
            return candidate
    raise ConfigError("a learned router corrects a panel router trained with retrieval features "
                      "(groups `retrieval` or `retrieval_norm`); this base has neither")


def retrieval_features(inputs: Mapping, names: tuple[str, ...] = RETRIEVAL_FEATURES) -> dict[str, float]:
    """The retrieval features `names` of router inputs (or of a panel stage's shown inputs plus
    the query; the normalised ones need the inputs' `profile`)."""
    group = "retrieval_norm" if names == NORMALISED_FEATURES else "retrieval"
    return dict(zip(names, vectorize(inputs, (group,), names)))


def base_scaler(base: PanelRouter) -> tuple[dict[str, float], dict[str, float]]:
    """The base router's training mean and scale of each feature the corrections read
    (`adjustment_names`; the same for every action: they standardise one feature matrix)."""
    model = next(iter(base.actions.values()))
    index = {n: i for i, n in enumerate(base.feature_names)}
    names = adjustment_names(base)
    return ({n: float(model.mean[index[n]]) for n in names}, {n: float(model.scale[index[n]]) for n in names})


def adjusted(state: LearnedState, base: PanelRouter, base_probs: Mapping[str, float],
             retrieval: Mapping[str, float], collection: str) -> dict[str, float]:
    """P(correct) per action on `collection` after the state's corrections learned there (an
    action without a posterior keeps the base router's)."""
    mean, scale = base_scaler(base)
    posteriors = state.posteriors(collection)
    return {a: (posteriors[a].p_correct(adjustment_vector(p, retrieval, mean, scale))
                if a in posteriors else float(p)) for a, p in base_probs.items()}


class LearnedRouter(Router):
    """See the module docstring. Loaded as `learned:NAME`; needs the decision log."""

    kind = "learned"
    stage = "learned_router"
    uses_decision_log = True

    def __init__(self, name: str, base: PanelRouter, state: LearnedState, version: int, decisions,
                 refresh_s: float = REFRESH_S):
        self.name, self.base, self.decisions, self.refresh_s = name, base, decisions, refresh_s
        self._current = (state, version)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str, data_dir: Path, embedder, decisions=None) -> "LearnedRouter":
        if decisions is None:
            raise ConfigError("the learned router keeps its versions in the decision log, and this engine has none")
        checked_name(name)
        state, version = _stored(decisions, name)
        base = load_base(state.base, Path(data_dir), embedder)
        if state.base_training_hash and base.meta.get("training_hash") != state.base_training_hash:
            raise ConfigError(f"learned router {name!r} was learned on base {state.base} with training hash "
                              f"{state.base_training_hash}; that base is now {base.meta.get('training_hash')}: "
                              "start a new learned router (another name) or restore the base")
        return cls(name, base, state, version, decisions)

    @property
    def state(self) -> LearnedState:
        return self._current[0]

    @property
    def version(self) -> int:
        return self._current[1]

    @property
    def label(self) -> str:
        return f"learned router {self.name} v{self.version} on {self.base.label}"

    @property
    def meta(self) -> dict:
        """The base router's metadata (what `adaptive`'s probe stages read), with this version."""
        return {**self.base.meta, "learned": {"name": self.name, "version": self.version,
                                             "learned_from": self.state.learned_from}}

    def install(self, state: LearnedState, version: int) -> None:
        """Serve `version` from now on (after this process learned it)."""
        with self._lock:
            if version >= self.version:
                self._current = (state, version)
            self._checked = time.monotonic()

    def refresh(self, force: bool = False) -> None:
        """Serve the decision log's latest version, looking at most every `refresh_s` seconds."""
        if not force and time.monotonic() - self._checked < self.refresh_s:
            return
        self._checked = time.monotonic()
        latest = self.decisions.latest_router_version(self.name)
        if latest is not None and latest > self.version:
            row = self.decisions.router_state(self.name, latest)
            self.install(LearnedState.from_json(row["state"], f"router {self.name} v{latest}"), latest)

    def verdict(self, run: RouterRun) -> RouterVerdict:
        self.refresh()
        state, version = self._current
        inputs = router_inputs(run.query, run.retrieval())
        base_probs = self.base.probabilities(inputs)
        probs = adjusted(state, self.base, base_probs, retrieval_features(inputs, adjustment_names(self.base)),
                         run.collection)
        verdict = choice_verdict(probs, {a: m.cost for a, m in self.base.actions.items()}, run, displayed(inputs))
        signals = {**verdict.signals, "base_probabilities": base_probs, "router_version": f"{self.name}@v{version}"}
        return dataclasses.replace(verdict, signals=signals)


def load_base(spec: str, data_dir: Path, embedder) -> PanelRouter:
    """The panel router a learned router corrects ("panel:NAME"), checked against the embedder."""
    kind, _, name = spec.partition(":")
    if kind != "panel":
        raise ConfigError(f"a learned router corrects a panel router; its base {spec!r} is not one")
    return PanelRouter.load(name or "default", data_dir, embedder)


def _stored(decisions, name: str) -> tuple[LearnedState, int]:
    row = decisions.router_state(name)
    if row is None:
        return LearnedState(DEFAULT_BASE, None, {}), 0
    return LearnedState.from_json(row["state"], f"router {name} v{row['version']}"), row["version"]
