"""Evaluation and benchmarks; sits on top of everything else.

Its dependencies are the `eval` extra (`pip install 'adaptive-rag[eval]'`): ragas and its LangChain
stack, rouge-score, rapidfuzz, matplotlib, rank-bm25. Serving never imports this package. Without
the extra, importing it raises one ImportError that says how to install it, and `arag eval`,
`arag gatekeeper` and `arag calibrate` (its entry points) print that line instead of running.
"""

from __future__ import annotations

import importlib.util

# the import names of the `eval` extra in pyproject.toml
EXTRA_MODULES = ("ragas", "langchain_community", "rouge_score", "rapidfuzz", "matplotlib", "rank_bm25")
INSTALL_HINT = "pip install 'adaptive-rag[eval]'"


def missing_extra() -> list[str]:
    """The modules of the `eval` extra that cannot be found (not installed)."""
    lacking = []
    for name in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            lacking.append(name)
    return lacking


_lacking = missing_extra()
if _lacking:
    raise ImportError(f"evaluation needs the `eval` extra ({', '.join(_lacking)} not installed): "
                      f"install adaptive-rag[eval], e.g. {INSTALL_HINT}")
