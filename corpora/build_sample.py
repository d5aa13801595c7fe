"""Rebuild the demo sample, `adaptive_rag/demo_data/squad_sample.json` (package data, so that an
installed `arag demo` finds it), from the full SQuAD v1.1 dev set in ../shared/data.

The sample keeps five whole articles (with all their questions) so that the README demo and the
fast tests run on a fresh machine without ../shared. Usage: python corpora/build_sample.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "data" / "squad_dev_v1.1.json"
TARGET = HERE.parent / "adaptive_rag" / "demo_data" / "squad_sample.json"
# Two tuning-split articles (0-31) and three report-split articles (32-47); all short.
ARTICLES = ["Sky_(United_Kingdom)", "Amazon_rainforest", "Jacksonville,_Florida",
            "Intergovernmental_Panel_on_Climate_Change", "Prime_number"]


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    full = json.loads(source.read_text(encoding="utf-8"))
    by_title = {a["title"]: a for a in full["data"]}
    sample = {
        "version": full.get("version", "1.1"),
        "canary": full.get("canary"),  # BIG-bench canary: keeps benchmark data out of training sets
        "data": [by_title[t] for t in ARTICLES],
    }
    TARGET.write_text(json.dumps(sample, ensure_ascii=False))
    questions = sum(len(p["qas"]) for a in sample["data"] for p in a["paragraphs"])
    print(f"wrote {len(ARTICLES)} articles, {questions} questions to {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
