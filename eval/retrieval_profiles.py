"""Retrieval profiles of the evaluation collections (adaptive_rag/retrieval_profile.py), written as
small JSON files, so label rows made before profiles existed can be read on the normalised scale
(`with_profile`) without the collection at hand.

    python -m eval.retrieval_profiles --dataset mixed --out eval/results/profiles/mixed.json

ingests the data set's collections when missing (as `arag eval` does), builds the profile of each
and writes {collection: {"anchors": {...}, "chunks", "queries"}}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Mapping, Sequence


def with_profile(rows: Sequence[Mapping], anchors: Mapping[str, list[float]]) -> list[dict]:
    """Label rows whose inputs carry `anchors` as their profile where they have none."""
    out = []
    for r in rows:
        inputs = dict(r["inputs"])
        if not inputs.get("profile"):
            inputs["profile"] = {k: list(v) for k, v in anchors.items()}
        out.append({**r, "inputs": inputs})
    return out


def load_profiles(path: Path) -> dict[str, dict[str, list[float]]]:
    """collection -> anchors, from a file this module wrote."""
    return {c: p["anchors"] for c, p in json.loads(Path(path).read_text()).items()}


def main(argv: list[str] | None = None) -> int:
    from adaptive_rag.retrieval_profile import build_profile
    from adaptive_rag.settings import Settings
    from eval.cli import cached_engine
    from eval.datasets import load_for_eval

    ap = argparse.ArgumentParser(prog="python -m eval.retrieval_profiles", description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, help="the data set whose collections to profile (as for arag eval)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    settings = Settings()
    eval_set = load_for_eval(args.dataset, settings, args.split, None, None, 0)
    engine, cache = cached_engine(settings, eval_set.sources)
    try:
        result = {}
        for collection in sorted(eval_set.sources):
            p = build_profile(engine.retriever, collection)
            result[collection] = {"anchors": p.anchors(), "chunks": p.chunks, "queries": p.queries}
            print(f"{collection}: {p.chunks} chunks, anchors {p.anchors()}")
    finally:
        engine.retriever.store.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
