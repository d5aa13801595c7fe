"""`arag gatekeeper label|train|report|list`: learn the router from outcomes. Registered through the
`adaptive_rag.commands` entry point (labelling needs eval's data sets and generation cache)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from adaptive_rag.errors import UserError

app = typer.Typer(help="Train and inspect the gatekeeper (the router's classifier) from answer outcomes.", no_args_is_help=True)


def _settings():
    from adaptive_rag.cli import settings

    return settings()


@app.command()
def label(
    dataset: Annotated[str, typer.Option(help="squad-dev, hotpotqa, squad:PATH, hotpotqa:PATH, jsonl:PATH")],
    out: Annotated[Path, typer.Option(help="Directory for labels.jsonl (resumed when it exists).")],
    split: Annotated[str, typer.Option(help="train to train on (dev: 30% held out for tuning; train+dev: both); test "
                                               "rows are for `report --test-labels`; `train` refuses test and final rows.")] = "train",
    limit: Annotated[Optional[int], typer.Option(min=1, help="N seeded questions, the same ones `arag eval` picks for this seed.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    collection: Annotated[Optional[str], typer.Option()] = None,
    all_routes: Annotated[bool, typer.Option("--all-routes", help="Also run long context when a cheaper route was correct.")] = False,
) -> None:
    """Answer each training question by every route it takes (cheapest first) and record the cheapest correct one."""
    from tqdm import tqdm

    from eval import datasets
    from eval.cli import cached_engine
    from eval.labels import label as run_label

    s = _settings()
    eval_set = datasets.sample(datasets.load_eval_set(dataset, s, split, collection), limit, seed)
    samples = eval_set.samples
    engine, cache = cached_engine(s, eval_set.sources)
    bar = tqdm(total=len(samples), unit="question", disable=None, file=sys.stderr)
    rows = run_label(engine, samples, out, all_routes, progress=bar.update, split=split)
    bar.close()
    cache.flush()
    chosen = {(sm.collection, sm.id) for sm in samples}
    counts: dict[str, int] = {}
    for row in rows:
        if (row["collection"], row["id"]) in chosen:
            counts[row["label"]] = counts.get(row["label"], 0) + 1
    typer.echo(f"{len(chosen)} questions labelled in {out}/labels.jsonl: "
               + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
               + f" (generation cache: {cache.hits} hits, {cache.misses} misses)")


@app.command()
def train(
    labels: Annotated[List[Path], typer.Option(help="Label directories (repeatable).")],
    model: Annotated[str, typer.Option(help="logreg (default), mlp, knn or minilm.")] = "logreg",
    name: Annotated[str, typer.Option(help="Artifact name; the server loads ARAG_GATEKEEPER.")] = "default",
    features: Annotated[str, typer.Option(help="Feature groups: form, retrieval, probe, embedding.")] = "form,retrieval,embedding",
    seed: Annotated[int, typer.Option()] = 0,
    feedback: Annotated[bool, typer.Option("--feedback", help="Add queries labelled by POST /v1/feedback.")] = False,
) -> None:
    """Fit, calibrate (temperature, probe calibrators) and save a new artifact version."""
    from adaptive_rag.models.embedder import load_embedder
    from eval.labels import load_labels
    from adaptive_rag.registry import lookup
    from gatekeeper.classifiers import CLASSIFIERS
    from gatekeeper.train import train as fit

    lookup(CLASSIFIERS, model, "gatekeeper model")
    s = _settings()
    rows = load_labels(labels)
    from eval.datasets import HELD_OUT_SPLITS

    if any(r.get("split") in HELD_OUT_SPLITS for r in rows):
        raise UserError("these labels include test-split questions (test or final): train on training splits only")
    if feedback:
        from eval.feedback_labels import feedback_rows_from_settings

        extra = feedback_rows_from_settings(s)
        typer.echo(f"{len(extra)} feedback-labelled queries added", err=True)
        rows += extra
    groups = tuple(g.strip() for g in features.split(",") if g.strip())
    embedder = load_embedder(s)
    try:
        gk = fit(rows, model, groups, seed, name, embedder.name)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    gk.check_compatible(embedder.name, embedder.dim)
    path = gk.save(s.data_dir)
    typer.echo(f"saved {gk.label} to {path}")
    typer.echo(_metrics_table([gk.meta]))


def _metrics_table(metas: list[dict]) -> str:
    cols = [("accuracy", "acc"), ("log_loss", "log-loss"), ("ece_before_temperature", "ECE before"), ("ece", "ECE after"),
            ("auroc_rag_fails", "AUROC RAG fails"), ("auroc_rag_fails_by_top_dense", "top dense"),
            ("auroc_rag_fails_by_top_bm25", "top BM25"), ("auroc_rag_fails_by_draft_mean_logprob", "draft mean lp"),
            ("auroc_rag_fails_by_rag_mean_logprob", "RAG mean lp"),
            ("auroc_rag_fails_by_rag_calibrator", "RAG probe (router, after RAG)"), ("draft_calibrator_ece", "draft cal ECE"),
            ("rag_calibrator_ece", "RAG cal ECE")]
    lines = ["| gatekeeper | model | n | T | " + " | ".join(c for _, c in cols) + " |",
             "|---|---|---|---|" + "---|" * len(cols)]
    for meta in metas:
        m = meta["metrics"].get("test") or meta["metrics"]["cross_validated"]
        cells = [f"{m[k]:.3f}" if isinstance(m.get(k), float) else "-" for k, _ in cols]
        lines.append(f"| {meta['name']}@v{meta['version']} | {meta['model']} | {m['n']} | {meta['temperature']:.2f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


@app.command()
def report(
    test_labels: Annotated[Optional[List[Path]], typer.Option(help="Held-out label directories to score every artifact on.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write report.md, metrics.json and reliability.png here.")] = None,
    names: Annotated[Optional[str], typer.Option(help="Comma-separated artifact names (default: all).")] = None,
) -> None:
    """Compare the trained artifacts (latest version of each): cross-validated, or on --test-labels."""
    from eval.gatekeeper_report import compare

    s = _settings()
    wanted = {n.strip() for n in names.split(",")} if names else None
    typer.echo(compare(s, test_labels or [], out, wanted, _metrics_table))


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False) -> None:
    """Every saved artifact version."""
    from gatekeeper.artifact import list_gatekeepers

    metas = list_gatekeepers(_settings().data_dir)
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in m.items() if k != "feature_names"} for m in metas], indent=2))
    elif not metas:
        typer.echo("no gatekeepers yet (arag gatekeeper train)")
    else:
        typer.echo(_metrics_table(metas))


@app.command()
def knn(
    records: Annotated[List[Path], typer.Option(help="Eval run directories whose records.jsonl hold always_weak_rag and "
                                                     "always_strong_rag answers (train/dev splits only).")],
    name: Annotated[str, typer.Option(help="Router name (ARAG_WEAK_STRONG_ROUTER).")] = "default",
    k: Annotated[int, typer.Option(min=1, help="Neighbours per prediction.")] = 10,
) -> None:
    """Train the RouteLLM-style kNN weak/strong router from evaluation records."""
    from adaptive_rag.models.embedder import load_embedder
    from gatekeeper import knn_router

    rows = _training_runs(records)
    s = _settings()
    embedder = load_embedder(s)
    labelled = knn_router.labels_from_records(rows)
    router = knn_router.train(labelled, embedder.embed_query, embedder.name, k)
    folder = router.save(s.data_dir, name)
    typer.echo(f"weak/strong router {name!r}: {len(labelled)} questions, weak suffices for "
               f"{router.labels.mean():.0%}, k={router.k}; saved in {folder}")


def _training_runs(records: List[Path]) -> list[dict]:
    """Every record of these eval runs; a run on a test or final split (test, final, final2, mixed's
    test2) is refused."""
    from eval.datasets import HELD_OUT_SPLITS
    from eval.runner import load_records

    rows = []
    for run_dir in records:
        path = run_dir / "records.jsonl"
        if not path.is_file():
            raise UserError(f"{path} not found")
        summary = run_dir / "summary.json"
        meta = json.loads(summary.read_text()) if summary.is_file() else {}
        if meta.get("split") in HELD_OUT_SPLITS or str(meta.get("dataset", "")).rpartition(":")[2] in HELD_OUT_SPLITS:
            raise UserError(f"{run_dir}: a run on a test or final split is never trained on")
        rows += load_records(path)
    return rows


@app.command("panel-labels")
def panel_labels(
    records: Annotated[List[Path], typer.Option(help="Eval run directories (train/dev splits) with always_abstain, closed_book, "
                                                     "strong_closed_book, always_weak_rag and always_strong_rag records.")],
    collection: Annotated[str, typer.Option(help="The collection the runs asked (mixed for --dataset mixed).")],
    out: Annotated[Path, typer.Option(help="Directory for labels.jsonl and meta.json (rewritten).")],
) -> None:
    """Panel-router training labels: each question's outcome under every action, plus its router
    inputs (one retrieval per question). Training from them needs no collection or model."""
    from adaptive_rag.models.embedder import load_embedder
    from adaptive_rag.retrieve import Retriever
    from adaptive_rag.store import open_store
    from gatekeeper import panel_router
    from gatekeeper.features import router_inputs

    rows = panel_router.labels_from_records(_training_runs(records))
    if not rows:
        raise UserError("no question has records of every core action's fixed policy: "
                        + ", ".join(panel_router.ACTIONS[a][2] for a in panel_router.CORE_ACTIONS))
    s = _settings()
    embedder = load_embedder(s)
    retriever = Retriever(s, open_store(s), embedder)
    for row in rows:
        retrieval = retriever.search(collection, row["question"], k=s.top_k, components=True)
        row["inputs"] = panel_router.slim_inputs(router_inputs(row["question"], retrieval))
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "labels.jsonl.partial"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out / "labels.jsonl")
    (out / "meta.json").write_text(json.dumps({
        "runs": [str(r) for r in records], "collection": collection, "embedder": embedder.name, "top_k": s.top_k,
        "questions": len(rows), "training_hash": panel_router.training_hash(rows)}, indent=2))
    typer.echo(f"{len(rows)} questions with every action's outcome in {out}/labels.jsonl")


@app.command()
def panel(
    labels: Annotated[List[Path], typer.Option(help="Directories from `arag gatekeeper panel-labels`.")],
    name: Annotated[str, typer.Option(help="Router name (ARAG_PANEL_ROUTER).")] = "default",
    out: Annotated[Optional[Path], typer.Option(help="Write the router here instead of <data dir>/routers/NAME "
                                                     "(gatekeeper/default_router is the one the package ships).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    groups: Annotated[str, typer.Option(help="Feature groups, comma-separated: form, retrieval (raw scores), "
                                             "retrieval_norm (on each collection's own scale), hops (multi-hop "
                                             "wording), embedding.")]
    = "form,retrieval,embedding",
    profiles: Annotated[Optional[Path], typer.Option(help="A folder of COLLECTION.json retrieval profiles "
                                                          "(python -m eval.retrieval_profiles) for label rows "
                                                          "written before profiles existed.")] = None,
) -> None:
    """Train the panel router that `adaptive` runs (no model or collection needed; seconds)."""
    from eval.retrieval_profiles import load_profiles, with_profile
    from gatekeeper import features, panel_router

    chosen = tuple(g.strip() for g in groups.split(",") if g.strip())
    unknown = set(chosen) - (set(features.GROUPS) - {"probe"})
    if unknown or not chosen:
        raise UserError(f"unknown feature groups {sorted(unknown) or groups!r}; valid: form, retrieval, "
                        "retrieval_norm, hops, embedding")
    rows, embedders = [], set()
    for directory in labels:
        path, meta = directory / "labels.jsonl", directory / "meta.json"
        if not path.is_file() or not meta.is_file():
            raise UserError(f"{directory}: labels.jsonl and meta.json are needed (write them with `arag gatekeeper panel-labels`)")
        part = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        info = json.loads(meta.read_text())
        profile = profiles / f"{info.get('collection')}.json" if profiles is not None else None
        if profile is not None and profile.is_file():
            part = with_profile(part, load_profiles(profile)[info["collection"]])
        if "retrieval_norm" in chosen and any(not r["inputs"].get("profile") for r in part):
            raise UserError(f"{directory}: rows without a retrieval profile; pass --profiles with "
                            f"{info.get('collection')}.json (python -m eval.retrieval_profiles)")
        rows += part
        embedders.add(info["embedder"])
    if len(embedders) != 1:  # the query vectors must come from one embedder, the one that will serve
        raise UserError(f"these labels were written with different embedders: {', '.join(sorted(embedders))}")
    embedder = embedders.pop()
    router, heldout = panel_router.train(rows, embedder, name, seed, chosen)
    folder = out or panel_router.routers_dir(_settings().data_dir) / name
    router.save(folder)
    if out is None:
        (folder / "heldout.jsonl").write_text("".join(json.dumps(h) + "\n" for h in heldout))
    typer.echo(f"panel router {name!r}: {len(rows)} questions; saved in {folder}")
    typer.echo("| action | positive rate | C | AUROC (cross-fitted) | ECE (cross-fitted) | mean cost ($) | tokens |")
    typer.echo("|---|---|---|---|---|---|---|")
    for action, m in router.meta["cross_validated"].items():
        a = router.actions[action]
        auroc = f"{m['auroc']:.3f}" if m["auroc"] is not None else "-"
        typer.echo(f"| {action} | {m['positive_rate']:.2f} | {m['c']:g} | {auroc} | {m['ece']:.3f} | {a.cost:.6f} | {a.tokens:.0f} |")


@app.command()
def probe(
    labels: Annotated[Path, typer.Option(help="A folder of `python -m eval.probe_labels` (labels.jsonl, hidden-*.npz, meta.json).")],
    name: Annotated[str, typer.Option(help="Saved as <data dir>/routers/NAME/answer_probe.json.")],
    kind: Annotated[str, typer.Option(help="answer (the answer tokens' mean state, after generating) or prompt "
                                           "(the prompt's last state, before generating).")] = "answer",
    fit_on: Annotated[str, typer.Option(help="train+dev (to serve), or train (to evaluate the probe on dev "
                                              "questions it never saw).")] = "train+dev",
    combine: Annotated[bool, typer.Option(help="answer probes: stack a combiner that also reads the answer's "
                                               "output signals (log-probs, support, length).")] = True,
) -> None:
    """Train an internal-state probe, P(the answer is wrong), from stored hidden states (no model
    runs): layer and regularisation chosen by 5-fold cross-validated AUROC on the train questions,
    the logistic regression then fitted on train and dev (`--fit-on train`: on train only). It serves only the model file, engine
    and dtype that produced the states."""
    import numpy as np

    from eval import probe_report
    from gatekeeper import answer_probe

    if kind not in answer_probe.KINDS:
        raise UserError(f"unknown probe kind {kind!r}; valid: {', '.join(answer_probe.KINDS)}")
    if fit_on not in ("train", "train+dev"):
        raise UserError(f"--fit-on {fit_on!r}: choose train or train+dev")
    if not (labels / "labels.jsonl").is_file() or not (labels / "meta.json").is_file():
        raise UserError(f"{labels}: labels.jsonl and meta.json are needed (python -m eval.probe_labels)")
    meta = json.loads((labels / "meta.json").read_text())
    rows, states = probe_report.load(labels)
    wrong = np.array([not r["correct"] for r in rows])
    is_train = probe_report.splits(meta["dataset"], [r["id"] for r in rows])
    X = states[kind]
    best = probe_report.choose_probe(X[is_train], states["layers"].tolist(), wrong[is_train].astype(int), ("logistic",))
    cv_auroc, layer, c = best["cv_auroc"], best["layer"], best["hyper"]
    fitted = is_train if fit_on == "train" else np.ones(len(rows), dtype=bool)
    y = wrong[fitted].astype(int)
    held_out = probe_report._cross_fitted(X[fitted][:, best["layer_index"]], y, "logistic", c)  # out of fold
    combiner = None
    if combine and kind == "answer":
        signals = np.column_stack([probe_report.signal_values(rows, n) for n in answer_probe.COMBINER_SIGNALS])[fitted]
        combiner = answer_probe.fit_combiner(held_out, signals, y)
        held_out = probe_report._cross_fitted(answer_probe.combiner_features(held_out, signals), y, "logistic", 1.0)
    # how often a threshold escalates right and wrong answers, from out-of-fold predictions
    rates = answer_probe.rates_table(held_out, y.astype(bool))
    mean, scale, coef, intercept = answer_probe.fit(X[fitted][:, best["layer_index"]], wrong[fitted], c)
    probe = answer_probe.AnswerProbe(kind, layer, mean, scale, coef, intercept, meta["model_sha256"], meta["engine"],
                                     meta["dtype"], {"name": name, "dataset": meta["dataset"], "questions": int(fitted.sum()),
                                                     "fit_on": fit_on, "model": meta.get("model"), "c": c,
                                                     "cv_auroc_train": cv_auroc, "labels": str(labels),
                                                     "escalation_rates": rates}, combiner)
    path = probe.save(_settings().data_dir, name)
    typer.echo(f"answer probe {name!r} ({kind}, layer {layer}, C {c:g}{', with output signals' if combiner else ''}): "
               f"cross-validated AUROC on train {cv_auroc:.3f} (states alone); "
               f"fitted on {int(fitted.sum())} {fit_on} questions; saved in {path}")
