#!/bin/bash
# Weak/strong routing on `mixed` (issue 11), development splits only: weak (0.5B) and strong
# (1.5B) answers on train questions, the kNN router trained on them, then every weak/strong
# policy on dev questions (the weak and strong generations come from the cache after the first run).
set -ex
cd "$(dirname "$0")/.."
A=.venv/bin/arag
export ARAG_STRONG_MODEL=qwen2.5-coder-1.5b
$A eval --dataset mixed --split train --limit 100 --seed 0 \
  --policies closed_book,always_weak_rag,always_strong_rag --out eval/results/mixed-train-weak-strong
$A gatekeeper knn --records eval/results/mixed-train-weak-strong --name default
$A eval --dataset mixed --split dev --limit 60 --seed 0 \
  --policies closed_book,always_weak_rag,always_strong_rag,cascade,knn_router --out eval/results/mixed-dev-weak-strong
