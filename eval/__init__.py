"""Evaluation and benchmarks; sits on top of everything else."""
