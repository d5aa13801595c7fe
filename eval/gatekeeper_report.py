"""`arag gatekeeper report`: the trained artifacts side by side, cross-validated on their training
questions or scored on held-out test labels, with reliability diagrams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from adaptive_rag.errors import UserError
from gatekeeper.artifact import label_index, list_gatekeepers, load_gatekeeper
from gatekeeper.calibration import top_label_reliability
from gatekeeper.features import answer_signals
from gatekeeper.train import evaluate


def score_on(gk, rows: list[dict]) -> dict:
    """Every metric of `evaluate` for one artifact on labelled rows it never trained on."""
    proba = np.array([[gk.probabilities(r["inputs"])[label] for label in gk.meta["labels"]] for r in rows])
    y = label_index([r["label"] for r in rows])

    def p(calibrator, route):
        return [calibrator(answer_signals((r["outcomes"].get(route) or {}).get("signals") or {},
                                          (r["outcomes"].get(route) or {}).get("unanswerable"))) for r in rows]

    metrics = evaluate(proba, y, rows, p(gk.draft_calibrator, "closed_book"), p(gk.rag_calibrator, "rag"))
    metrics["reliability"] = top_label_reliability(proba, y).bins
    return metrics


def _plot(entries: list[tuple[str, list[dict], list[dict] | None]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(entries), figsize=(4 * len(entries), 4), squeeze=False)
    for ax, (title, after, before) in zip(axes[0], entries):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        if before:
            ax.plot([b["confidence"] for b in before], [b["accuracy"] for b in before], "s--", color="tab:red",
                    alpha=0.6, label="before temperature")
        ax.plot([b["confidence"] for b in after], [b["accuracy"] for b in after], "o-", color="tab:blue", label="calibrated")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("confidence (top label)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(settings, test_labels: Iterable[Path], out: Path | None, names: set[str] | None,
            table: Callable[[list[dict]], str]) -> str:
    from eval.labels import load_labels

    latest: dict[str, dict] = {}
    for meta in list_gatekeepers(settings.data_dir):
        if names is None or meta["name"] in names:
            latest[meta["name"]] = meta  # versions come in ascending order
    if not latest:
        raise UserError("no gatekeepers to compare (arag gatekeeper train)")
    rows = load_labels(test_labels) if test_labels else []
    metas, plots = [], []
    for name, meta in latest.items():
        gk = load_gatekeeper(settings.data_dir, name, meta["version"])
        if rows:
            mine = [r for r in rows if r["collection"] in meta["collections"]] or rows
            metrics = score_on(gk, mine)
            meta = {**meta, "metrics": {**meta["metrics"], "test": metrics}}
            plots.append((f"{gk.label} ({meta['model']}), test", metrics["reliability"], None))
        else:
            cv = meta["metrics"]["cross_validated"]
            plots.append((f"{gk.label} ({meta['model']}), cross-validated", cv["reliability"], cv["reliability_before"]))
        metas.append(meta)
    text = ("Scored on held-out test labels" if rows else "Cross-validated on the training labels") + "\n\n" + table(metas)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text("# Gatekeeper comparison\n\n" + text + "\n\n![reliability](reliability.png)\n")
        (out / "metrics.json").write_text(json.dumps([{k: v for k, v in m.items() if k != "feature_names"} for m in metas], indent=2))
        _plot(plots, out / "reliability.png")
    return text
