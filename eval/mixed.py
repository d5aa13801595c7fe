"""`mixed`: traffic where routing decisions matter, against one collection (`mixed`) holding the
SQuAD dev articles (all but the left-out ones) and every HotpotQA paragraph (train and test).

Kinds of question and their share of a sample (PROPORTIONS):
- `squad` (30%): single-hop questions the collection answers (its article is in the collection);
- `hotpotqa` (20%): multi-hop questions over its paragraphs;
- `general` (30%): BIG-bench qa_wikidata facts turned into questions ("The country of Solothurn
  is" -> "What is the country of Solothurn?", TEMPLATES), gold = the target; the collection does
  not cover them, closed-book knowledge may;
- `out_of_collection` (20%): SQuAD questions whose article is left out of the collection
  (LEFT_OUT: every sixth article), gold = abstain: no route can answer them from the collection,
  and a small model's closed-book answer to a reading-comprehension question is a guess.
Why these shares: half of the traffic is what the collection is for, the other half a mix of
general questions (most production RAG traffic carries general and chit-chat queries beside the
collection's own; the LlamaIndex request to skip retrieval for them, llama_index #14142) and
questions about things the collection does not hold, where the right answer is to say so.

Scoring: an `out_of_collection` question scores 1 (EM and F1) when the policy abstained (route
`abstain`, or the answer is the refusal word) and 0 otherwise; every other question scores the
usual EM/F1 against its gold answers, so abstaining on it scores 0.

Splits are disjoint by construction:
- `train` (70%) and `dev` (30%): SQuAD articles 0-31 and HotpotQA train.csv, cut by
  eval/datasets.py's `train_or_dev` (a seeded shuffle of the sorted question ids), the same
  function and so the same questions as `--dataset squad-dev|hotpotqa --split train|dev`;
- `test`: only the first declared final questions (eval/splits/final.json: SQuAD articles 32-47
  and HotpotQA test.csv questions no earlier run used); it reproduces the committed mixed-final;
- `test2`: only the second declared final questions (eval/splits/final2.json, 2026-12-07: those of
  final.json that no committed run, the final runs included, used), for the one final run at the
  end of the probe, two-stage router and multi-step retrieval work;
- qa_wikidata prompts go to train/dev/test by index (i % 10 < 6 / < 8 / else); test2 takes the
  test band's indices that no committed run used (final2.json's `qa_wikidata`: mixed-final's 60
  general questions are out).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from pathlib import Path

from adaptive_rag.errors import UserError

COLLECTION = "mixed"
PROPORTIONS = {"squad": 0.30, "hotpotqa": 0.20, "general": 0.30, "out_of_collection": 0.20}
LEFT_OUT = frozenset(range(5, 48, 6))  # SQuAD article indexes kept out of the collection: 5, 11, ..., 47
ABSTAIN = "<abstain>"
SPLITS = ("train", "dev", "test", "test2")
FINAL_OF = {"test": "final", "test2": "final2"}  # a test split -> the declared split it draws from
TEMPLATES = (  # qa_wikidata prompt -> question; prompts matching none are not used
    (re.compile(r"^The (.+) is$"), "What is the {0}?"),
    (re.compile(r"^(.+) is located in$"), "Where is {0} located?"),
    (re.compile(r"^(.+) shares a border with$"), "What does {0} share a border with?"),
    (re.compile(r"^(.+) is capital of$"), "What is {0} the capital of?"),
)


def as_question(prompt: str) -> str | None:
    for pattern, template in TEMPLATES:
        match = pattern.match(prompt.strip())
        if match:
            return template.format(*match.groups())
    return None


def _squad_pools(settings, split: str):
    """(answerable, out-of-collection) SQuAD samples of `split`."""
    from eval.datasets import SQUAD_TEST_FROM, load_eval_set

    articles = json.loads((Path(settings.shared_data_dir) / "squad_dev_v1.1.json").read_text(encoding="utf-8"))["data"]
    index_of = {a["title"]: i for i, a in enumerate(articles)}
    samples = load_eval_set("squad-dev", settings, FINAL_OF.get(split, split)).samples
    assert all(index_of[s.gold_doc_ids[0]] < SQUAD_TEST_FROM for s in samples) or split in FINAL_OF
    inside = [s for s in samples if index_of[s.gold_doc_ids[0]] not in LEFT_OUT]
    outside = [s for s in samples if index_of[s.gold_doc_ids[0]] in LEFT_OUT]
    return inside, outside


def _hotpot_pool(settings, split: str):
    from eval.datasets import load_eval_set

    return load_eval_set("hotpotqa", settings, FINAL_OF.get(split, split)).samples


def general_pool(settings, split: str):
    """The qa_wikidata questions of `split`: its band of indices (test2: the test band's indices
    listed in final2.json, those no committed run used)."""
    from eval.datasets import EvalSample

    if split == "test2":
        from eval.final_split import final_ids

        keep = final_ids("qa_wikidata", "final2")
        return [s for s in general_pool(settings, "test") if s.id in keep]
    data = json.loads((Path(settings.shared_data_dir) / "bigbench_qa_wikidata.json").read_text(encoding="utf-8"))
    band = {"train": range(0, 6), "dev": range(6, 8), "test": range(8, 10)}[split]
    out = []
    for i, example in enumerate(data["examples"]):
        question = as_question(example["input"])
        if question is None or i % 10 not in band:
            continue
        target = example["target"]
        answers = tuple(target) if isinstance(target, list) else (str(target),)
        out.append(EvalSample(f"wikidata-{i}", question, answers, COLLECTION))
    return out


def _write_once(target: Path, text: str) -> Path:
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return target


def squad_in_collection(settings) -> Path:
    """The SQuAD dev file without the left-out articles, written once into the data directory
    (deterministic, so re-ingesting it changes nothing)."""
    data = json.loads((Path(settings.shared_data_dir) / "squad_dev_v1.1.json").read_text(encoding="utf-8"))
    data["data"] = [a for i, a in enumerate(data["data"]) if i not in LEFT_OUT]
    return _write_once(Path(settings.data_dir) / "mixed" / "squad_in_collection.json", json.dumps(data))


def hotpotqa_all(settings) -> Path:
    """train.csv and test.csv as one file: read as one stream, a title whose paragraph differs
    between the two files gets one document id per version (4 such titles), as within a file."""
    shared = Path(settings.shared_data_dir) / "hotpotqa"
    train = (shared / "train.csv").read_text(encoding="utf-8")
    test = (shared / "test.csv").read_text(encoding="utf-8").split("\n", 1)[1]  # without its header
    return _write_once(Path(settings.data_dir) / "mixed" / "hotpotqa_all.csv", train.rstrip("\n") + "\n" + test)


def load_mixed(settings, split: str | None, limit: int | None, seed: int):
    """The `mixed` EvalSet of `split` (default dev): `limit` questions in PROPORTIONS (all of the
    smallest pool's share when there are fewer), drawn with `seed`; kinds in `EvalSample.kind`."""
    from eval.datasets import EvalSet

    split = split or "dev"
    if split not in SPLITS:
        raise UserError(f"mixed has splits {', '.join(SPLITS)}, not {split!r}")
    shared = Path(settings.shared_data_dir)
    if not (shared / "squad_dev_v1.1.json").is_file() or not (shared / "hotpotqa").is_dir():
        raise UserError(f"mixed needs SQuAD, HotpotQA and qa_wikidata under {shared}")
    inside, outside = _squad_pools(settings, split)
    pools = {"squad": inside, "hotpotqa": _hotpot_pool(settings, split), "general": general_pool(settings, split),
             "out_of_collection": outside}
    total = limit or 200
    rng = random.Random(seed)
    samples = []
    for kind, share in PROPORTIONS.items():
        pool = sorted(pools[kind], key=lambda s: s.id)
        chosen = rng.sample(pool, min(len(pool), round(total * share)))
        for s in chosen:
            answers = (ABSTAIN,) if kind == "out_of_collection" else s.answers
            gold_docs = () if kind in ("out_of_collection", "general") else s.gold_doc_ids
            samples.append(replace(s, answers=answers, collection=COLLECTION, kind=kind, gold_doc_ids=gold_docs))
    sources = [f"squad:{squad_in_collection(settings)}", f"hotpotqa:{hotpotqa_all(settings)}"]
    return EvalSet(f"mixed:{split}", samples, {COLLECTION: sources})


def abstained(route: str | None, answer: str) -> bool:
    from adaptive_rag.query.signals import says_unanswerable

    return route == "abstain" or says_unanswerable(answer or "")
