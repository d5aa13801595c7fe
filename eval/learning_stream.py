"""Traffic for the learning simulation (`python -m eval.bench learning`): a deployment on one
collection whose starting router never saw that collection's questions.

`stream-squad` serves the `squad-dev` collection, `stream-hotpotqa` the `hotpotqa-train` one. Each
holds three kinds (PROPORTIONS):
- `target` (60%): the collection's own questions (SQuAD or HotpotQA, train and dev splits only);
- `general` (20%): qa_wikidata questions of the train and dev bands (eval/mixed.py's pool), which
  the collection does not cover;
- `out_of_collection` (20%): the *other* data set's questions (HotpotQA for the SQuAD collection,
  SQuAD for the HotpotQA one), gold = abstain: another corpus, not left-out articles of the same one.

Two disjoint splits, drawn once with the seed: `ceiling` (CEILING questions: labels for the router
trained on this collection with gold, the simulation's ceiling) and `stream` (STREAM questions, in
the seeded order they arrive). `--limit N` takes the first N of a split. The final splits are never
drawn from (only train and dev questions are).
"""

from __future__ import annotations

import random
from dataclasses import replace

from adaptive_rag.errors import UserError

PROPORTIONS = {"target": 0.6, "general": 0.2, "out_of_collection": 0.2}
CEILING, STREAM = 150, 300
SPLITS = ("ceiling", "stream")
TARGETS = {  # target -> (its data set, the collection, the other data set: out of collection)
    "squad": ("squad-dev", "squad-dev", "hotpotqa"),
    "hotpotqa": ("hotpotqa", "hotpotqa-train", "squad-dev"),
}


def _pool(settings, spec: str) -> list:
    from eval.datasets import load_eval_set

    return [s for split in ("train", "dev") for s in load_eval_set(spec, settings, split).samples]


def load_stream(settings, spec: str, split: str | None, limit: int | None, seed: int):
    """The EvalSet of `stream-TARGET` and `split` (see the module docstring)."""
    from eval.datasets import EvalSet, load_eval_set
    from eval.mixed import ABSTAIN, general_pool

    target = spec.removeprefix("stream-")
    if target not in TARGETS:
        raise UserError(f"unknown stream {spec!r}; use {', '.join('stream-' + t for t in TARGETS)}")
    split = split or "stream"
    if split not in SPLITS:
        raise UserError(f"{spec} has splits {', '.join(SPLITS)}, not {split!r}")
    dataset, collection, other = TARGETS[target]
    pools = {"target": _pool(settings, dataset),
             "general": general_pool(settings, "train") + general_pool(settings, "dev"),
             "out_of_collection": _pool(settings, other)}
    rng = random.Random(seed)
    drawn: dict[str, list] = {"ceiling": [], "stream": []}
    for kind, share in PROPORTIONS.items():
        pool = sorted(pools[kind], key=lambda s: s.id)
        rng.shuffle(pool)
        n_ceiling, n_stream = round(CEILING * share), round(STREAM * share)
        if len(pool) < n_ceiling + n_stream:
            raise UserError(f"{spec}: only {len(pool)} {kind} questions for {n_ceiling + n_stream}")
        for name, part in (("ceiling", pool[:n_ceiling]), ("stream", pool[n_ceiling:n_ceiling + n_stream])):
            for s in part:
                answers = (ABSTAIN,) if kind == "out_of_collection" else s.answers
                gold_docs = s.gold_doc_ids if kind == "target" else ()
                drawn[name].append(replace(s, answers=answers, collection=collection, kind=kind,
                                           gold_doc_ids=gold_docs))
    samples = drawn[split]
    rng.shuffle(samples)  # the order they arrive in
    samples = samples[:limit] if limit else samples
    sources = load_eval_set(dataset, settings, "train").sources
    return EvalSet(f"{spec}:{split}", samples, {collection: sources[collection]})
