"""Evaluation data sets: questions with gold answers and gold passages, plus the collection they
are asked against (ingested on first use with the same readers as `arag ingest`).

Specs: `squad-dev` (../shared/data's SQuAD v1.1 dev, or the packaged demo sample when it is absent),
`squad:PATH` (any SQuAD-format file; collection named after the file), `hotpotqa` (the shared
CSVs; the split picks the file), `hotpotqa:PATH`, `jsonl:PATH` (`{"question", "answers",
"gold_doc_ids"?, "collection"}` per line).

Splits of `squad-dev` and `hotpotqa` (docs/evaluation.md, "Splits"):
- `train` and `dev`: the development pool (SQuAD dev articles 0-31; HotpotQA train.csv) cut 70/30
  by `train_or_dev`: a shuffle of the sorted question ids with seed 0, the first 70% `train`.
  Disjoint, together the whole pool, the same on every machine. Train on `train`, tune and choose
  on `dev`. `mixed` (eval/mixed.py) cuts its SQuAD and HotpotQA pools with the same function, so a
  question is in mixed's train iff it is in this train. The cut is by question, not by article: it
  is the cut mixed has made since its first runs (its committed train/dev runs and the panel
  router's labels depend on it), and a whole-article cut of the SQuAD pool would disagree with
  mixed. The price: questions about the same paragraph can fall on both sides, so a dev score of
  something that can memorise a topic (a kNN router over question embeddings) is somewhat
  optimistic; the test and final splits are other articles, and they are what results report.
- `train+dev`: the whole pool; what `--split dev` (SQuAD) and `--split train` (HotpotQA) meant
  before 2026-12-07, kept so that the committed label files can be reproduced.
- `test`: SQuAD articles 32-47; HotpotQA test.csv. Evaluated many times, so now development data.
- `final`: the test-split questions no earlier run used, declared in eval/splits/final.json
  (2026-11-30) and evaluated once (the committed *-final runs).
- `final2`: the questions of `final` that no committed run or label file, the final runs
  included, used; declared in eval/splits/final2.json (2026-12-07, eval/final_split.py), shared
  with the multi-step retrieval work, evaluated once at the end of that work.
"""

from __future__ import annotations

import ast
import csv
import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from adaptive_rag.errors import UserError
from adaptive_rag.settings import DEMO_SAMPLE, Settings
from ingest.readers import parse_hotpotqa_context

SQUAD_TEST_FROM = 32  # article index where the report split starts
TRAIN_SHARE = 0.7  # share of the development pool in `train`; the rest is `dev`
SPLIT_SEED = 0  # the seed of the train/dev shuffle; changing it moves every question
SPLITS = ("train", "dev", "train+dev", "test", "final", "final2")  # of squad-dev and hotpotqa
DECLARED_SPLITS = ("final", "final2")  # listed in eval/splits/<name>.json, each evaluated once
HELD_OUT_SPLITS = frozenset({"test", "final", "final2", "test2"})  # never trained on (test2: mixed's)


def train_or_dev(ids, seed: int = SPLIT_SEED) -> dict[str, str]:
    """Question id -> "train" or "dev": the sorted ids shuffled with `seed`, the first
    TRAIN_SHARE of them `train`. The one rule for every train/dev cut (squad-dev, hotpotqa and
    mixed's pools); it depends only on the set of ids, not on their order."""
    order = sorted(set(ids))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * TRAIN_SHARE)
    return {i: ("train" if n < cut else "dev") for n, i in enumerate(order)}


def _train_dev_part(samples: list, split: str | None) -> list:
    if split not in ("train", "dev"):
        return samples
    which = train_or_dev(s.id for s in samples)
    return [s for s in samples if which[s.id] == split]


@dataclass(frozen=True)
class EvalSample:
    id: str
    question: str
    answers: tuple[str, ...]
    collection: str
    gold_doc_ids: tuple[str, ...] = ()
    gold_chunk_keys: tuple[str, ...] = ()
    kind: str = ""  # mixed: squad, hotpotqa, general or out_of_collection


@dataclass
class EvalSet:
    name: str
    samples: list[EvalSample]
    # collection -> ingest spec(s) for collections that must exist before the run
    sources: dict[str, str | list[str]] = field(default_factory=dict)


def _collection_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem)[:63].strip("-.") or "eval"


def _squad(path: Path, collection: str, split: str | None, source_spec: str) -> EvalSet:
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a SQuAD-format JSON file ({type(exc).__name__})") from exc
    full_dev = len(articles) == 48
    samples = []
    for index, article in enumerate(articles):
        if split and full_dev and (index >= SQUAD_TEST_FROM) != (split == "test"):  # train/dev: 0-31
            continue
        for p, para in enumerate(article.get("paragraphs", [])):
            for qa in para.get("qas", []):
                answers = tuple(a["text"] for a in qa.get("answers", []))
                if answers:
                    samples.append(EvalSample(str(qa["id"]), qa["question"], answers, collection,
                                              (article["title"],), (f"{article['title']}#{p}",)))
    if full_dev:
        samples = _train_dev_part(samples, split)
    return EvalSet(f"squad:{path.name}" + (f":{split}" if split and full_dev else ""), samples, {collection: source_spec})


def _hotpotqa(path: Path, collection: str, source_spec: str) -> EvalSet:
    csv.field_size_limit(sys.maxsize)
    samples = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"qid", "question_text", "reference", "context"} <= set(reader.fieldnames):
                raise UserError(f"{path}: not a HotpotQA CSV (needs qid, question_text, reference, context)")
            for row in reader:
                answers = tuple(str(a) for a in ast.literal_eval(row["reference"]))
                paragraphs = parse_hotpotqa_context(row["context"])
                gold = tuple(dict.fromkeys(p["title"] for p in paragraphs if p.get("is_supporting")))
                samples.append(EvalSample(row["qid"], row["question_text"], answers, collection, gold, gold))
    except OSError as exc:
        raise UserError(f"{path}: unreadable ({exc.strerror or exc})") from exc
    except (ValueError, SyntaxError) as exc:
        raise UserError(f"{path}: malformed HotpotQA row ({exc})") from exc
    return EvalSet(f"hotpotqa:{path.name}", samples, {collection: source_spec})


def _jsonl(path: Path) -> EvalSet:
    samples = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            question, answers, collection = obj["question"], obj["answers"], obj["collection"]
            if not isinstance(question, str) or not isinstance(answers, list) or not isinstance(collection, str):
                raise TypeError("question and collection must be strings, answers a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}:{number}: expected {{\"question\", \"answers\": [...], \"collection\"}} ({exc})") from exc
        gold = tuple(str(g) for g in obj.get("gold_doc_ids") or ())
        samples.append(EvalSample(str(obj.get("id", number)), question, tuple(map(str, answers)), collection, gold))
    return EvalSet(f"jsonl:{path.name}", samples)


def load_eval_set(spec: str, settings: Settings, split: str | None = None, collection: str | None = None) -> EvalSet:
    if split is not None and split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use {', '.join(SPLITS)} (mixed: train, dev, test, test2)")
    if split in DECLARED_SPLITS:
        if spec not in ("squad-dev", "hotpotqa"):
            raise UserError(f"the {split} split exists for squad-dev and hotpotqa only")
        from eval.final_split import final_ids

        whole = load_eval_set(spec, settings, "test", collection)
        keep = final_ids(spec, split)
        return EvalSet(f"{whole.name}:{split}", [s for s in whole.samples if s.id in keep], whole.sources)
    shared = settings.shared_data_dir
    if spec == "squad-dev":
        path = shared / "squad_dev_v1.1.json"
        if not path.is_file():
            path = DEMO_SAMPLE
        result = _squad(path, collection or "squad-dev", split, "squad-dev" if path.name.startswith("squad_dev") else f"squad:{path}")
    elif spec == "hotpotqa":
        name = "train" if split in ("train", "dev", "train+dev") else "test"
        path = shared / "hotpotqa" / f"{name}.csv"
        if not path.is_file():
            raise UserError(f"data set file {path} not found")
        result = _hotpotqa(path, collection or f"hotpotqa-{name}", f"hotpotqa:{path}")
        if split in ("train", "dev"):
            result = EvalSet(f"{result.name}:{split}", _train_dev_part(result.samples, split), result.sources)
    else:
        kind, sep, rest = spec.partition(":")
        path = Path(rest).expanduser()
        if not sep or kind not in ("squad", "hotpotqa", "jsonl"):
            raise UserError(f"unknown dataset {spec!r}; use squad-dev, hotpotqa, squad:PATH, hotpotqa:PATH or jsonl:PATH")
        if not path.is_file():
            raise UserError(f"dataset file {path} not found")
        if kind == "squad":
            name = collection or _collection_name(path)
            result = _squad(path, name, split, f"squad:{path}")
        elif kind == "hotpotqa":
            result = _hotpotqa(path, collection or _collection_name(path), f"hotpotqa:{path}")
        else:
            result = _jsonl(path)
    if not result.samples:
        raise UserError(f"{spec}: no questions with answers" + (f" in split {split!r}" if split else ""))
    return result


def load_for_eval(spec: str, settings: Settings, split: str | None, collection: str | None, limit: int | None,
                  seed: int) -> EvalSet:
    """What `arag eval` asks: `mixed` draws its kinds in proportion (eval/mixed.py), `stream-squad`
    and `stream-hotpotqa` are the learning simulation's traffic (eval/learning_stream.py); every
    other data set is loaded and then sampled."""
    if spec == "mixed":
        from eval.mixed import load_mixed

        if collection:
            raise UserError("mixed has its own collection (mixed); --collection does not apply")
        return load_mixed(settings, split, limit, seed)
    if spec.startswith("stream-"):
        from eval.learning_stream import load_stream

        if collection:
            raise UserError(f"{spec} has its own collection; --collection does not apply")
        return load_stream(settings, spec, split, limit, seed)
    return sample(load_eval_set(spec, settings, split, collection), limit, seed)


def sample(eval_set: EvalSet, limit: int | None, seed: int) -> EvalSet:
    """A seeded subset, in a stable order: the same seed always means the same questions."""
    if not limit or limit >= len(eval_set.samples):
        return eval_set
    chosen = random.Random(seed).sample(eval_set.samples, limit)
    return EvalSet(eval_set.name, chosen, eval_set.sources)
