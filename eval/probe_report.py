"""Do the reader's hidden states say when its RAG answer is wrong? Probes against output signals,
on the same questions, from the labels of eval/probe_labels.py (no model runs).

The question is "the reader's RAG answer is wrong" (F1 < 0.5); every score below is oriented so
that higher means "more likely wrong", and compared by AUROC on the dev questions only.

Probes (per data set): for each kind, `prompt` (the hidden state at the prompt's last token, known
before generating) and `answer` (the mean over the answer's tokens), and each stored layer, a
logistic regression on standardised states (inverse regularisation C from C_GRID) and a small MLP
(one hidden layer of 32, weight decay from ALPHA_GRID). Model, layer and hyper-parameters are chosen
by 5-fold cross-validated AUROC on the train questions alone; the chosen probe is refitted on all
of train and scored once on dev.

Output signals (the product's verification signals today): -mean, -min and -first token log-prob,
mean entropy, the refusal word's log-prob, -retrieval support, answer length, "said unanswerable".
Each signal's direction (whether high or low means wrong) is also fixed on train.

Intervals: 95% percentile bootstrap over dev questions (2,000 replicates, seed 0); the difference
between the best probe and the best output signal is paired (the same resampled questions).

    python -m eval.probe_report eval/results/probes/squad-dev [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

C_GRID = (0.001, 0.01, 0.1, 1.0)
ALPHA_GRID = (0.01, 1.0)
FOLDS = 5
REPLICATES = 2000
SIGNALS = ("mean_logprob", "min_logprob", "first_logprob", "mean_entropy", "refusal_logprob", "support",
           "answer_tokens", "said_unanswerable")


def load(folder: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Label rows and their states: {"prompt": [n, layers, d], "answer": ..., "layers": [...]}, in row order."""
    rows = [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    prompt, answer, ids, layers = {}, {}, [], None
    for shard in sorted(folder.glob("hidden-[0-9]*.npz")):
        data = np.load(shard)
        layers = data["layers"].tolist()
        for i, qid in enumerate(data["ids"].tolist()):
            prompt[qid], answer[qid] = data["prompt"][i].astype(np.float32), data["answer"][i].astype(np.float32)
            ids.append(qid)
    rows = [r for r in rows if r["id"] in prompt]
    return rows, {"prompt": np.stack([prompt[r["id"]] for r in rows]), "answer": np.stack([answer[r["id"]] for r in rows]),
                  "layers": np.array(layers)}


def splits(dataset: str, ids: list[str]) -> np.ndarray:
    """True where a question is in the data set's train split (else dev), by eval/datasets.py."""
    from adaptive_rag.settings import Settings
    from eval.datasets import load_eval_set

    train = {s.id for s in load_eval_set(dataset, Settings(), "train").samples}
    dev = {s.id for s in load_eval_set(dataset, Settings(), "dev").samples}
    if train == dev:
        raise SystemExit("train and dev are the same questions here: declare disjoint splits first")
    return np.array([i in train for i in ids])


def signal_values(rows: list[dict], name: str) -> np.ndarray:
    def value(r):
        if name == "answer_tokens":
            return float(r["answer_tokens"])
        if name == "said_unanswerable":
            return float(r["unanswerable"])
        if name == "support":
            return np.nan if r["support"] is None else float(r["support"])
        v = (r["signals"] or {}).get(name)
        return np.nan if v is None else float(v)
    return np.array([value(r) for r in rows])


def _auroc(scores: np.ndarray, wrong: np.ndarray) -> float:
    from gatekeeper.calibration import auroc

    return auroc(scores, wrong) or 0.5


def _model(kind: str, hyper: float, seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=hyper, max_iter=3000, random_state=seed))
    return make_pipeline(StandardScaler(), MLPClassifier((32,), alpha=hyper, max_iter=600, early_stopping=False,
                                                         random_state=seed))


def _fit(kind: str, hyper: float, X: np.ndarray, y: np.ndarray, seed: int = 0):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # a probe that has not converged is still scored as it is
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _model(kind, hyper, seed).fit(X, y)


def _cross_fitted(X: np.ndarray, y: np.ndarray, kind: str, hyper: float, seed: int = 0) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(y))
    out = np.zeros(len(y))
    for f in range(FOLDS):
        held = order[f::FOLDS]
        fit = np.setdiff1d(order, held)
        out[held] = _fit(kind, hyper, X[fit], y[fit], seed).predict_proba(X[held])[:, 1]
    return out


MODELS = {"logistic": C_GRID, "mlp": ALPHA_GRID}  # probe model -> its hyper-parameter grid


def choose_probe(X_layers: np.ndarray, layers: list[int], y: np.ndarray, models=tuple(MODELS)) -> dict:
    """The (model, hyper-parameter, layer) with the best cross-validated AUROC on these (train) rows."""
    best = None
    for li, layer in enumerate(layers):
        for kind, grid in ((m, MODELS[m]) for m in models):
            for hyper in grid:
                score = _auroc(_cross_fitted(X_layers[:, li], y, kind, hyper), y.astype(bool))
                if best is None or score > best["cv_auroc"] + 1e-9:
                    best = {"layer": layer, "layer_index": li, "model": kind, "hyper": hyper, "cv_auroc": score}
    return best


def bootstrap(scores: dict[str, np.ndarray], wrong: np.ndarray, reference: str | None, seed: int = 0) -> dict:
    """AUROC with its 95% interval per score, and each score's paired difference to `reference`."""
    from eval.stats import _interval

    rng = np.random.default_rng(seed)
    n = len(wrong)
    idx = rng.integers(0, n, size=(REPLICATES, n))
    reps = {k: np.array([_auroc(v[i], wrong[i]) for i in idx]) for k, v in scores.items()}
    out = {}
    for k, v in scores.items():
        row = {"auroc": _auroc(v, wrong), "ci": _interval(reps[k], 0.95)}
        if reference is not None and k != reference:
            row["diff_vs_" + reference] = row["auroc"] - _auroc(scores[reference], wrong)
            row["diff_ci"] = _interval(reps[k] - reps[reference], 0.95)
        out[k] = row
    return out


def _combined(rows, states, choice, probe_dev, wrong, tr, dv) -> dict[str, np.ndarray]:
    """Dev scores of two learned combinations, fitted on train: the answer probe stacked with the
    output signals (gatekeeper.answer_probe's combiner, on out-of-fold probe predictions, as
    `arag gatekeeper probe` fits it), and the output signals alone in one logistic regression (the
    fair baseline for it: more than the best single signal)."""
    from gatekeeper.answer_probe import COMBINER_SIGNALS, combiner_features, fit_combiner
    from gatekeeper.panel_router import fit_logistic

    X = states["answer"][:, choice["layer_index"]]
    y = wrong.astype(int)
    held_out = _cross_fitted(X[tr], y[tr], choice["model"], choice["hyper"])
    S = np.column_stack([signal_values(rows, n) for n in COMBINER_SIGNALS])
    combiner = fit_combiner(held_out, S[tr], y[tr])
    features_dev = combiner_features(probe_dev, S[dv])
    z = ((features_dev - combiner["mean"]) / combiner["scale"]) @ np.array(combiner["coef"]) + combiner["intercept"]
    alone = combiner_features(np.full(len(rows), 0.5), S)[:, 1:]  # the signals, missing ones filled
    mean, scale, coef, intercept = fit_logistic(alone[tr], y[tr].astype(float), 1.0, 0, max_iter=3000)
    z_alone = ((alone[dv] - mean) / scale) @ coef + intercept
    return {"probe_answer+signals": 1 / (1 + np.exp(-z)), "signals_combined": 1 / (1 + np.exp(-z_alone))}


def analyse(folder: Path) -> dict:
    meta = json.loads((folder / "meta.json").read_text())
    rows, states = load(folder)
    wrong = np.array([not r["correct"] for r in rows])
    is_train = splits(meta["dataset"], [r["id"] for r in rows])
    tr, dv = is_train, ~is_train
    layers = states["layers"].tolist()
    result = {"dataset": meta["dataset"], "model": meta["model"], "engine": meta["engine"], "dtype": meta["dtype"],
              "questions": len(rows), "train_questions": int(tr.sum()), "dev_questions": int(dv.sum()),
              "wrong_rate_train": float(wrong[tr].mean()), "wrong_rate_dev": float(wrong[dv].mean()), "probes": {}}
    dev_scores: dict[str, np.ndarray] = {}
    for kind in ("prompt", "answer"):
        X = states[kind]
        choice = choose_probe(X[tr], layers, wrong[tr].astype(int))
        model = _fit(choice["model"], choice["hyper"], X[tr][:, choice["layer_index"]], wrong[tr].astype(int))
        dev_scores[f"probe_{kind}"] = model.predict_proba(X[dv][:, choice["layer_index"]])[:, 1]
        result["probes"][kind] = choice
    dev_scores.update(_combined(rows, states, result["probes"]["answer"], dev_scores["probe_answer"], wrong, tr, dv))
    directions = {}
    for name in SIGNALS:
        values = signal_values(rows, name)
        fill = np.nanmedian(values[tr]) if np.isfinite(values[tr]).any() else 0.0
        values = np.where(np.isfinite(values), values, fill)
        sign = 1.0 if _auroc(values[tr], wrong[tr]) >= 0.5 else -1.0  # direction fixed on train
        directions[name] = sign
        dev_scores[name] = sign * values[dv]
    best_signal = max(SIGNALS, key=lambda s: _auroc(dev_scores[s], wrong[dv]))
    result["signal_direction"] = directions
    result["best_output_signal_on_dev"] = best_signal
    result["dev_auroc"] = bootstrap(dev_scores, wrong[dv], best_signal)
    return result


def report_md(r: dict) -> str:
    lines = [f"# Does the {r['model']} know when its RAG answer is wrong? ({r['dataset']})", "",
             f"{r['questions']} questions ({r['train_questions']} train, {r['dev_questions']} dev); the answer is wrong (F1 < 0.5) for "
             f"{r['wrong_rate_train']:.0%} of train and {r['wrong_rate_dev']:.0%} of dev. Engine {r['engine']} "
             f"{r['dtype']}. AUROC for \"the answer is wrong\" on the dev questions, 95% bootstrap intervals; "
             f"probes chosen on train by 5-fold cross-validation.", "",
             "| score | AUROC (dev) | 95% CI | vs the best output signal |", "|---|---|---|---|"]
    for name, row in sorted(r["dev_auroc"].items(), key=lambda kv: -kv[1]["auroc"]):
        diff = (f"{row['diff_vs_' + r['best_output_signal_on_dev']]:+.3f} [{row['diff_ci'][0]:+.3f}, {row['diff_ci'][1]:+.3f}]"
                if "diff_ci" in row else "(the best output signal)" if name == r["best_output_signal_on_dev"] else "")
        lines.append(f"| {name} | {row['auroc']:.3f} | [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}] | {diff} |")
    lines += ["", "Chosen probes (on train):", ""]
    for kind, c in r["probes"].items():
        lines.append(f"- `{kind}`: layer {c['layer']}, {c['model']} ({'C' if c['model'] == 'logistic' else 'alpha'} "
                     f"{c['hyper']:g}), cross-validated AUROC on train {c['cv_auroc']:.3f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.probe_report", description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="where report.md and summary.json go (default: the folder)")
    args = ap.parse_args(argv)
    result = analyse(args.folder)
    out = args.out or args.folder
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    text = report_md(result)
    (out / "report.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
