#!/bin/bash
# The router measurement (issue 5), after the training labels exist (arag gatekeeper label):
# train per data set, test labels from the eval cache, compare models, calibrate thresholds on the
# held-out training predictions, then evaluate gatekeeper + adaptive on the test splits (cache hits).
set -x
cd "$(dirname "$0")/.."
A=.venv/bin/arag
for ds in ${@:-squad hotpotqa}; do  # data sets as arguments (default: both)
  if [ $ds = squad ]; then L=eval/results/labels/squad-dev; T=eval/results/labels/squad-test; args="--dataset squad-dev --split test"; out=eval/results/squad-test
  else L=eval/results/labels/hotpotqa-train; T=eval/results/labels/hotpotqa-test; args="--dataset hotpotqa --split test"; out=eval/results/hotpotqa-test; fi
  mkdir -p eval/results/gatekeeper/$ds
  $A gatekeeper train --labels $L --name $ds || exit 1
  for m in mlp knn; do $A gatekeeper train --labels $L --name $ds-$m --model $m || exit 1; done
  $A gatekeeper label $args --limit 200 --seed 0 --all-routes --out $T || exit 1
  $A gatekeeper report --test-labels $T --names $ds,$ds-mlp,$ds-knn --out eval/results/gatekeeper/$ds || exit 1
  $A gatekeeper report --names $ds,$ds-mlp,$ds-knn > eval/results/gatekeeper/$ds/cross_validated.md || exit 1
  $A calibrate --gatekeeper $ds --target-accuracy best-0.005 --out eval/results/gatekeeper/$ds/thresholds.json > eval/results/gatekeeper/$ds/calibrate.txt 2>&1 || exit 1
  TH=$(python3 -c "import json;print(json.dumps(json.load(open('eval/results/gatekeeper/$ds/thresholds.json'))['thresholds']))")
  ARAG_GATEKEEPER=$ds ARAG_THRESHOLDS="$TH" $A eval $args --limit 200 --seed 0 --policies closed_book,always_rag,always_lc,self_route,probe,gatekeeper,adaptive --fresh --out $out > eval/results/gatekeeper/$ds/eval.log 2>&1 || exit 1
  # Ablation: retrieval signals only (reported beside the result, not instead of it).
  R=eval/results/gatekeeper/$ds-retrieval; mkdir -p $R
  $A gatekeeper train --labels $L --name $ds-retrieval --features retrieval || exit 1
  $A gatekeeper report --test-labels $T --names $ds-retrieval --out $R || exit 1
  $A gatekeeper report --names $ds-retrieval > $R/cross_validated.md || exit 1
  $A calibrate --gatekeeper $ds-retrieval --target-accuracy best-0.005 --out $R/thresholds.json > $R/calibrate.txt 2>&1 || exit 1
  TH=$(python3 -c "import json;print(json.dumps(json.load(open('$R/thresholds.json'))['thresholds']))")
  ARAG_GATEKEEPER=$ds-retrieval ARAG_THRESHOLDS="$TH" $A eval $args --limit 200 --seed 0 --policies closed_book,always_rag,always_lc,self_route,adaptive --out $R/eval --fresh > $R/eval.log 2>&1 || exit 1
  rm -f $R/eval/records.jsonl  # the answers are in the main result directory's cache; keep the report
done
echo FINAL5 DONE
