"""Labels for internal-state probes: the reader answers seeded questions with RAG, each answer is
scored against the gold answers, and the reader's hidden states are kept beside the label, so that
probes are trained and compared without running a model again.

Per question (seeded samples of a data set's train and dev splits; never test or final questions):
hybrid retrieval of the top `k` chunks from the data set's collection, the RAG answer of the reader
on the transformers engine (greedy, the product's RAG prompt), its F1 / EM against the gold
answers (correct = F1 >= 0.5, the routers' definition), the answer's log-prob signals and retrieval
support (the signals the probes are compared with), and the hidden states of the chosen layers,
read from the answer's own generation as a served probe reads them
(TransformersLM.generate_with_states):
- `prompt`: at the prompt's last token, before any answer token (a pre-generation probe);
- `answer`: the mean over the answer's tokens (a post-generation probe).
Folders labelled before 2026-12-07 read them with a second forward pass over prompt + answer
(meta.json: "states_from": "second_pass"); the two readings agree to a median |P(wrong)|
difference of 0.0007 on 150 SQuAD dev questions (`python -m eval.bench probe`).

Output folder: `labels.jsonl` (one row per question: id, question, f1, em, correct, answer, signals,
support, tokens, latencies) and `hidden-NNNNN.npz` shards (ids, layers, prompt and answer states
as float16 [n, layers, hidden]); `meta.json` names the model file (sha256), engine, dtype, layers,
top_k and the command. A shard is written before its rows, so an interrupted run resumes where
it stopped (`python -m eval.probe_labels ... --out DIR` again) and every row has its vectors.

    python -m eval.probe_labels --dataset squad-dev --limit 400 --dev-limit 200 --seed 0 --out eval/results/probes/squad-dev
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

SHARD = 25
DEFAULT_LAYERS = (4, 8, 12, 16, 20, 24)


def done_ids(out: Path) -> set[str]:
    labels = out / "labels.jsonl"
    if not labels.is_file():
        return set()
    return {json.loads(line)["id"] for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()}


def pool(dataset: str, settings, limit: int, dev_limit: int, seed: int):
    """One seeded order over the data set's train and dev questions (sorted ids, shuffled with
    `seed`); the first `limit` train questions in it, then the first `dev_limit` dev ones. (The
    split itself is the same kind of shuffle with seed 0: with seed 0 the train questions come
    first in this order, so both counts are taken from the order separately.)"""
    from eval.datasets import load_eval_set

    train = {s.id: s for s in load_eval_set(dataset, settings, "train").samples}
    dev = {s.id: s for s in load_eval_set(dataset, settings, "dev").samples}
    order = sorted({**train, **dev})
    random.Random(seed).shuffle(order)
    picked_train = [train[i] for i in order if i in train][:limit]
    picked_dev = [dev[i] for i in order if i in dev][:dev_limit]
    return picked_train + picked_dev


def reader(settings):
    """The settings' reader on the transformers engine (the engine whose hidden states are read)."""
    from adaptive_rag.models.catalog import load_lm, resolve
    from adaptive_rag.models.transformers_lm import TransformersLM

    name = settings.reader_model
    spec = resolve(settings.catalog, name).model_copy(update={"backend": "transformers"})
    lm = load_lm(name, spec, settings.models_dir)
    if not isinstance(lm, TransformersLM):  # pragma: no cover - the catalog decides
        raise SystemExit(f"{name} does not run on the transformers engine here")
    return lm


class _Capturing:
    """The reader, keeping the probe states of its last greedy generation (`states`)."""

    def __init__(self, lm, layers):
        self.lm, self.layers, self.states = lm, layers, None

    def __getattr__(self, name):
        return getattr(self.lm, name)

    def generate(self, messages, max_new_tokens=32, first_token_candidates=()):
        gen, self.states = self.lm.generate_with_states(messages, self.layers, max_new_tokens, first_token_candidates)
        return gen


def _flush(out: Path, rows: list[dict], prompt, answer, layers) -> None:
    import numpy as np

    index = len(list(out.glob("hidden-*.npz")))
    tmp = out / f"hidden-{index:05d}.partial.npz"
    np.savez_compressed(tmp, ids=np.array([r["id"] for r in rows]), layers=np.array(layers),
                        prompt=np.stack(prompt).astype(np.float16), answer=np.stack(answer).astype(np.float16))
    tmp.replace(out / f"hidden-{index:05d}.npz")
    with open(out / "labels.jsonl", "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def run(args) -> int:
    import numpy as np

    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.models.minilm_export import sha256_file
    from adaptive_rag.query import answer_routes
    from adaptive_rag.retrieve import Retriever
    from adaptive_rag.settings import Settings
    from adaptive_rag.store import open_store
    from eval.cli import _ensure_collections
    from eval.datasets import load_eval_set
    from eval.metrics import exact_match, f1_score
    from gatekeeper.panel_router import CORRECT_F1

    settings = Settings()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    questions = pool(args.dataset, settings, args.limit, args.dev_limit, args.seed)
    _ensure_collections(settings, load_eval_set(args.dataset, settings, "train").sources)
    lm = reader(settings)
    layers = [int(x) for x in args.layers.split(",")]
    meta_path = out / "meta.json"
    meta = {"dataset": args.dataset, "seed": args.seed, "limit": args.limit, "dev_limit": args.dev_limit,
            "top_k": args.top_k,
            "max_new_tokens": args.max_new_tokens, "model": lm.name, "engine": lm.engine, "dtype": lm.dtype,
            "model_file": lm.model_file.name, "model_sha256": sha256_file(lm.model_file) if lm.model_file.is_file() else None,
            "layers": layers, "correct_if_f1_at_least": CORRECT_F1, "states_from": "generation",
            "command": "python -m eval.probe_labels " + " ".join(sys.argv[1:])}
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        old.setdefault("states_from", "second_pass")  # folders from before states were read in generation
        differ = [k for k in ("dataset", "seed", "top_k", "max_new_tokens", "model_sha256", "layers", "engine", "dtype",
                              "states_from") if old.get(k) != meta[k]]
        if differ:
            raise SystemExit(f"{out} was labelled with other {', '.join(differ)}: use another --out")
    meta_path.write_text(json.dumps(meta, indent=2))
    done = done_ids(out)
    todo = [q for q in questions if q.id not in done]
    print(f"{len(done)} labelled, {len(todo)} to go ({lm.name}, {lm.engine} {lm.dtype}, layers {layers})", file=sys.stderr)
    capturing = _Capturing(lm, layers)
    store = open_store(settings)
    retriever = Retriever(settings, store, load_embedder(settings))
    rows, prompt, answer = [], [], []
    try:
        for n, q in enumerate(todo, 1):
            hits = retriever.search(q.collection, q.question, k=args.top_k).hits
            result = answer_routes.rag(capturing, q.question, hits, args.max_new_tokens)
            text = result.generation.text
            states = capturing.states
            f1 = f1_score(text, q.answers)
            rows.append({"id": q.id, "question": q.question, "dataset": args.dataset, "answer": text,
                         "f1": f1, "em": exact_match(text, q.answers), "correct": f1 >= CORRECT_F1,
                         "unanswerable": result.unanswerable, "signals": result.signals, "support": result.support,
                         "gold_retrieved": bool(set(q.gold_doc_ids) & {h.doc_id for h in hits}),
                         "prompt_tokens": result.generation.usage.input_tokens,
                         "answer_tokens": result.generation.usage.output_tokens,
                         "generation_ms": result.generation.latency_ms, "probe_ms": None})  # read in the generation
            prompt_rows = np.stack([states["prompt"][layer] for layer in layers])
            prompt.append(prompt_rows)
            answer.append(np.stack([states["answer"][layer] for layer in layers]) if states["answer"] is not None
                          else np.zeros_like(prompt_rows))
            if len(rows) == SHARD or n == len(todo):
                _flush(out, rows, prompt, answer, layers)
                print(f"  {len(done) + n}/{len(questions)} ({time.strftime('%H:%M:%S')})", file=sys.stderr)
                rows, prompt, answer = [], [], []
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.probe_labels", description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, choices=("squad-dev", "hotpotqa"))
    ap.add_argument("--limit", type=int, default=400, help="train questions")
    ap.add_argument("--dev-limit", type=int, default=200, help="dev questions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--layers", default=",".join(map(str, DEFAULT_LAYERS)), help="hidden states to keep (0 = embeddings)")
    ap.add_argument("--out", required=True)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
