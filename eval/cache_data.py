"""The answer cache's test traffic, built once and committed as data (eval/results/cache/data/):

- **paraphrases** of SQuAD dev-split questions, written by the panel's strong model and kept only
  when (a) they differ from the original by word-level Jaccard <= MAX_JACCARD (not near-copies) and
  (b) the strong model's RAG answer to the paraphrase still matches the original's gold answers
  (F1 >= CORRECT_F1), so a paraphrase asks the same thing and is answerable. Every candidate is
  written with its fate (`kept`, `too_close`, `answer_changed`, `empty`) and provenance (model,
  prompt, attempt, the strong answer and its F1).
- **hard negatives**: pairs (an earlier question, a new question) that look alike but want a
  different answer: other SQuAD dev-split questions about the *same paragraph* whose gold answers
  do not overlap (token F1 < CORRECT_F1 both ways), and HotpotQA dev-split questions that share a
  supporting article (an entity) with different answers. No model writes these.

    python -m eval.cache_data paraphrases --candidates 240 --seed 0 --out eval/results/cache/data
    python -m eval.cache_data negatives --keep-squad 300 --keep-hotpotqa 100 --seed 0 --out eval/results/cache/data

Generations go through the eval generation cache (ARAG_DATA_DIR/eval_cache.sqlite): a rerun
resumes where it stopped and costs nothing for what was done. Only dev-split questions are used;
the test and final splits are never read.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

CORRECT_F1 = 0.5
MAX_JACCARD = 0.6
PARAPHRASE_SYSTEM = "You rewrite questions. You never answer them."
PARAPHRASE_PROMPTS = (
    "Rewrite the question below so that it asks exactly the same thing in different words. Change the wording "
    "and the word order, keep every name, number and date. Reply with the rewritten question only.\n\n"
    "Question: {question}",
    "Ask the question below again using as few of its words as you can: use synonyms and a different sentence "
    "structure, but keep every name, number and date and ask exactly the same thing. Reply with the new question "
    "only.\n\nQuestion: {question}",
)
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def jaccard(a: str, b: str) -> float:
    """Word-level Jaccard similarity of two texts (case folded, punctuation ignored)."""
    wa, wb = words(a), words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def clean_paraphrase(text: str) -> str:
    """The first non-empty line of a model's reply, without a "Question:" label or quotes."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(rewritten |new )?question\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip('"“”\'').strip()


def paraphrases(args) -> int:
    from adaptive_rag.models.lm import Message
    from adaptive_rag.settings import Settings
    from eval.cli import cached_engine
    from eval.datasets import load_eval_set
    from eval.metrics import f1_score

    settings = Settings()
    dev = load_eval_set("squad-dev", settings, "dev")
    candidates = random.Random(args.seed).sample(dev.samples, min(args.candidates, len(dev.samples)))
    engine, cache = cached_engine(settings, dev.sources)
    lm = engine.models.get(None, "strong")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, started = [], time.time()
    try:
        for n, sample in enumerate(candidates, 1):
            row = {"id": sample.id, "original": sample.question, "answers": list(sample.answers),
                   "collection": sample.collection, "model": lm.identity}
            for attempt, prompt in enumerate(PARAPHRASE_PROMPTS):
                gen = lm.generate([Message("system", PARAPHRASE_SYSTEM),
                                   Message("user", prompt.format(question=sample.question))], 48)
                text = clean_paraphrase(gen.text)
                row.update(paraphrase=text, attempt=attempt, jaccard=round(jaccard(text, sample.question), 4))
                if text and row["jaccard"] <= MAX_JACCARD:
                    break
            if not row["paraphrase"]:
                row["fate"] = "empty"
            elif row["jaccard"] > MAX_JACCARD:
                row["fate"] = "too_close"
            else:
                decision = engine.answer(sample.collection, row["paraphrase"], policy="always_strong_rag",
                                         use_cache=False)
                row["strong_answer"] = decision.answer
                row["strong_f1"] = round(f1_score(decision.answer or "", sample.answers), 4)
                row["fate"] = "kept" if row["strong_f1"] >= CORRECT_F1 else "answer_changed"
            rows.append(row)
            if n % 10 == 0:
                kept = sum(r["fate"] == "kept" for r in rows)
                print(f"  {n}/{len(candidates)} candidates, {kept} kept, {time.time() - started:.0f} s", file=sys.stderr)
    finally:
        cache.flush()
        engine.retriever.store.close()
    fates = {f: sum(r["fate"] == f for r in rows) for f in ("kept", "too_close", "answer_changed", "empty")}
    (out / "paraphrase_candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept = [r for r in rows if r["fate"] == "kept"]
    (out / "paraphrases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    provenance = {"what": "paraphrases of SQuAD v1.1 dev-split questions (eval/datasets.py's dev cut)",
                  "model": lm.identity, "system": PARAPHRASE_SYSTEM, "prompts": list(PARAPHRASE_PROMPTS),
                  "kept_if": f"word Jaccard <= {MAX_JACCARD} and the model's always_strong_rag answer to the "
                             f"paraphrase has F1 >= {CORRECT_F1} against the original's gold answers",
                  "candidates": len(rows), "fates": fates, "jaccard_of_kept": _distribution([r["jaccard"] for r in kept]),
                  "seed": args.seed, "date": time.strftime("%Y-%m-%d"),
                  "command": "python -m eval.cache_data " + " ".join(sys.argv[1:]),
                  "licence": "derived from SQuAD v1.1 (CC BY-SA 4.0, ../shared/data/README)"}
    (out / "paraphrases_provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return 0


def _distribution(values: list[float]) -> dict:
    """Quantiles and a 0.1-wide histogram of values in [0, 1]."""
    if not values:
        return {"n": 0}
    import numpy as np

    v = np.asarray(values, dtype=float)
    counts, _ = np.histogram(v, bins=10, range=(0.0, 1.0))
    return {"n": len(values), "min": round(float(v.min()), 3), "p25": round(float(np.quantile(v, 0.25)), 3),
            "median": round(float(np.median(v)), 3), "p75": round(float(np.quantile(v, 0.75)), 3),
            "max": round(float(v.max()), 3),
            "histogram_0.1_bins": {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": int(c) for i, c in enumerate(counts)}}


def look_alike_pairs(kind: str, groups: dict[str, list]) -> list[dict]:
    """Every ordered pair (earlier, later) of questions that share a group (a paragraph, an
    entity) and want different answers, once each, in the groups' sorted order."""
    rows, seen = [], set()
    for shared, group in sorted(groups.items()):
        for earlier in group:
            for later in group:
                if later.id != earlier.id and (earlier.id, later.id) not in seen \
                        and _answers_differ(earlier.answers, later.answers):
                    seen.add((earlier.id, later.id))
                    rows.append({"kind": kind, "shared": shared, "collection": earlier.collection,
                                 "earlier_id": earlier.id, "earlier": earlier.question,
                                 "earlier_answers": list(earlier.answers), "id": later.id, "question": later.question,
                                 "answers": list(later.answers), "jaccard": round(jaccard(earlier.question, later.question), 4)})
    return rows


def proper_nouns(question: str) -> set[str]:
    """Capitalised words of 4+ letters after the question's first word: a crude named-entity mark."""
    return {w for w in _WORD.findall(question)[1:] if len(w) >= 4 and w[0].isupper()}


def pair_similarities(settings, pairs: list[tuple[str, str]], as_queries: bool = False) -> list[float]:
    """Cosine similarity of each (earlier, new) pair under the settings' embedder: document
    embeddings in batches, or with `as_queries` each text's query embedding, one at a time, as the
    answer cache computes it (batched embedding differs in the third decimal)."""
    import numpy as np

    from adaptive_rag.models.embedder import load_embedder

    texts = sorted({t for pair in pairs for t in pair})
    embedder = load_embedder(settings)
    if as_queries:
        vectors = np.vstack([embedder.embed_query(t) for t in texts])
    else:
        vectors = np.vstack([embedder.embed_documents(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    at = {t: i for i, t in enumerate(texts)}
    return [round(float(vectors[at[a]] @ vectors[at[b]]), 4) for a, b in pairs]


def _add_similarity(settings, rows: list[dict]) -> None:
    """Each pair's cosine similarity (document embeddings: what the committed data were built with)."""
    for r, value in zip(rows, pair_similarities(settings, [(r["earlier"], r["question"]) for r in rows])):
        r["similarity"] = value


def select_disjoint(rows: list[dict], keep: dict[str, int], paraphrases: tuple[set, set]) -> list[dict]:
    """The most similar pairs first, up to `keep[kind]` of each kind, such that no question is
    both asked earlier (cached) and asked as a look-alike: a new question must meet the cache for
    the first time, or its "hit" would be its own earlier answer. `paraphrases` = (originals,
    paraphrases) of the paraphrase data, which the benchmark asks in the same run."""
    earlier, new = set(paraphrases[0]), set(paraphrases[1])
    chosen: list[dict] = []
    counts = dict.fromkeys(keep, 0)
    for r in rows:
        if counts[r["kind"]] >= keep[r["kind"]] or r["question"] in earlier | new or r["earlier"] in new:
            continue
        chosen.append(r)
        counts[r["kind"]] += 1
        earlier.add(r["earlier"])
        new.add(r["question"])
    return chosen


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _paraphrase_texts(out: Path) -> tuple[set, set]:
    path = out / "paraphrases.jsonl"
    if not path.is_file():
        return set(), set()
    rows = read_jsonl(path)
    return {r["original"] for r in rows}, {r["paraphrase"] for r in rows}


def _answers_differ(a, b) -> bool:
    from eval.metrics import f1_score

    return all(f1_score(x, b) < CORRECT_F1 for x in a) and all(f1_score(y, a) < CORRECT_F1 for y in b)


def negatives(args) -> int:
    from adaptive_rag.settings import Settings
    from eval.datasets import load_eval_set

    settings = Settings()
    rng = random.Random(args.seed)
    squad = load_eval_set("squad-dev", settings, "dev")
    by_paragraph: dict[str, list] = {}
    for s in squad.samples:
        by_paragraph.setdefault(s.gold_chunk_keys[0], []).append(s)
    rows = look_alike_pairs("squad_same_paragraph", by_paragraph)
    hotpot = load_eval_set("hotpotqa", settings, "train+dev")  # development pool; no test or final question
    by_entity: dict[str, list] = {}
    for s in hotpot.samples:
        for entity in set(s.gold_doc_ids) | proper_nouns(s.question):
            by_entity.setdefault(entity, []).append(s)
    rows += look_alike_pairs("hotpotqa_shared_entity", by_entity)
    _add_similarity(settings, rows)
    rows.sort(key=lambda r: -r["similarity"])
    keep = {"squad_same_paragraph": args.keep_squad, "hotpotqa_shared_entity": args.keep_hotpotqa}
    hardest = select_disjoint(rows, keep, _paraphrase_texts(Path(args.out)))
    rng.shuffle(hardest)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hard_negatives.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hardest))
    summary = {"what": "hard negatives: look-alike questions that want a different answer; of all such pairs, "
                       f"the {args.keep_squad} SQuAD and {args.keep_hotpotqa} HotpotQA pairs most similar by the cache's own measure (MiniLM cosine), such that no question is both an earlier (cached) one and a new one, the paraphrase data's included",
               "pairs_found": {k: sum(r["kind"] == k for r in rows) for k in ("squad_same_paragraph", "hotpotqa_shared_entity")},
               "kept": {k: sum(r["kind"] == k for r in hardest) for k in ("squad_same_paragraph", "hotpotqa_shared_entity")},
               "answers_differ_if": f"token F1 < {CORRECT_F1} between every pair of their gold answers, both ways",
               "shared_entity_if": "HotpotQA: a supporting article in common, or a capitalised word of 4+ letters "
                                   "(not the question's first) in both questions",
               "similarity_of_kept": _distribution([r["similarity"] for r in hardest]),
               "jaccard_of_kept": _distribution([r["jaccard"] for r in hardest]), "seed": args.seed,
               "date": time.strftime("%Y-%m-%d"), "command": "python -m eval.cache_data " + " ".join(sys.argv[1:]),
               "licence": "SQuAD v1.1 (CC BY-SA 4.0) and HotpotQA (CC BY-SA 4.0) questions, ../shared/data/README"}
    (out / "hard_negatives_provenance.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.cache_data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("paraphrases", help="strong-model paraphrases of SQuAD dev questions, checked")
    p.add_argument("--candidates", type=int, default=240)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="eval/results/cache/data")
    n = sub.add_parser("negatives", help="look-alike question pairs with different answers")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--keep-squad", type=int, default=300, help="keep this many of the most similar SQuAD pairs")
    n.add_argument("--keep-hotpotqa", type=int, default=100, help="and this many HotpotQA pairs")
    n.add_argument("--out", default="eval/results/cache/data")
    args = ap.parse_args(argv)
    return paraphrases(args) if args.what == "paraphrases" else negatives(args)


if __name__ == "__main__":
    raise SystemExit(main())
