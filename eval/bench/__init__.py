"""Benchmarks: `python -m eval.bench retrieval|ingest [--json] [--out FILE]`.

Each benchmark builds its collections in a throw-away data directory (never the user's), reuses
the exported embedder from `--models-dir`, and runs its baselines in the same process so that the
reported ratios compare like with like on the same machine at the same time.
"""
