#!/bin/bash
# The gatekeeper router measurement, after the training labels exist (arag gatekeeper label):
# train per data set, test labels from the eval cache, compare models, calibrate thresholds on the
# held-out training predictions, then evaluate gatekeeper + gatekeeper_adaptive (named `adaptive` when these runs were made) on the test splits (cache hits).
set -x
cd "$(dirname "$0")/.."
A=.venv/bin/arag

# report NAMES DIR: the artifacts scored on the test labels, and cross-validated on their own
report() {
  $A gatekeeper report --test-labels $T --names $1 --out $2 || exit 1
  $A gatekeeper report --names $1 > $2/cross_validated.md || exit 1
}

# calibrated_eval GATEKEEPER DIR POLICIES OUT: thresholds for F1 >= best fixed - 0.005, then the eval
calibrated_eval() {
  $A calibrate --gatekeeper $1 --target-accuracy best-0.005 --out $2/thresholds.json > $2/calibrate.txt 2>&1 || exit 1
  TH=$(python3 -c "import json;print(json.dumps(json.load(open('$2/thresholds.json'))['thresholds']))")
  ARAG_GATEKEEPER=$1 ARAG_THRESHOLDS="$TH" $A eval $args --limit 200 --seed 0 --policies $3 --fresh --out $4 > $2/eval.log 2>&1 || exit 1
}

for ds in ${@:-squad hotpotqa}; do  # data sets as arguments (default: both)
  if [ $ds = squad ]; then L=eval/results/labels/squad-dev; T=eval/results/labels/squad-test; args="--dataset squad-dev --split test"; out=eval/results/squad-test
  else L=eval/results/labels/hotpotqa-train; T=eval/results/labels/hotpotqa-test; args="--dataset hotpotqa --split test"; out=eval/results/hotpotqa-test; fi
  G=eval/results/gatekeeper/$ds; mkdir -p $G
  $A gatekeeper train --labels $L --name $ds || exit 1
  for m in mlp knn; do $A gatekeeper train --labels $L --name $ds-$m --model $m || exit 1; done
  $A gatekeeper label $args --limit 200 --seed 0 --all-routes --out $T || exit 1
  report $ds,$ds-mlp,$ds-knn $G
  calibrated_eval $ds $G closed_book,always_rag,always_lc,self_route,probe,gatekeeper,gatekeeper_adaptive $out
  # Ablation: retrieval signals only (reported beside the result, not instead of it).
  R=eval/results/gatekeeper/$ds-retrieval; mkdir -p $R
  $A gatekeeper train --labels $L --name $ds-retrieval --features retrieval || exit 1
  report $ds-retrieval $R
  calibrated_eval $ds-retrieval $R closed_book,always_rag,always_lc,self_route,gatekeeper_adaptive $R/eval
  rm -f $R/eval/records.jsonl  # the answers are in the main result directory's cache; keep the report
done
echo FINAL5 DONE
