#!/usr/bin/env bash
# Issue 17's check (toy.yaml on the redesigned code: the same numbers) and issue 16's label-quality
# options, one iteration each from the same challenger. Results: bench/RESULTS.md, "Label quality".
#   RUNS=runs bash bench/label_quality_runs.sh
set -u
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}

export RZERO_PL_CACHE=${RZERO_PL_CACHE:-$PWD/.rzero_cache} OMP_NUM_THREADS=1
mkdir -p "$RUNS"
log=$RUNS/label_quality.txt
start=$(date +%s)
rzero-pl fit --config cli_configs/toy.yaml --threads 1 --evolution.run_dir=$RUNS/equiv > $RUNS/equiv.log 2>&1
echo "equiv rc=$? seconds=$(( $(date +%s) - start ))" >> $log
prepare() {  # a run folder whose baseline and iteration-1 challenger are equiv's
  dir=$1
  rm -rf $dir; mkdir -p $dir/iter1/challenger
  cp -r $RUNS/equiv/eval $dir/eval
  cp -r $RUNS/equiv/iter1/challenger/weights $dir/iter1/challenger/weights
  python - "$dir" "$RUNS" <<'PY'
import json, sys
src = json.load(open(sys.argv[2] + "/equiv/state.json"))
keep = {k: v for k, v in src["phases"].items() if k in ("baseline", "iter1/challenger")}
src["phases"] = keep
src["step"] = max(v["step_end"] for v in keep.values())
json.dump(src, open(sys.argv[1] + "/state.json", "w"))
PY
}
M='{class_path: rzero_pl.label_filters.MarginRule, init_args: {min_margin: 0.2}}'
G='{class_path: rzero_pl.label_filters.GreedyAgreement}'
for name in margin greedy both; do
  case $name in
    margin) filters="[$M]";;
    greedy) filters="[$G]";;
    both) filters="[$M, $G]";;
  esac
  dir=$RUNS/lq_$name
  prepare $dir
  start=$(date +%s)
  rzero-pl fit --config cli_configs/toy.yaml --threads 1 --evolution.iterations=1 \
    --evolution.allow_config_change=true --evolution.run_dir=$dir \
    "--evolution.curriculum.label_filters=$filters" > $dir.log 2>&1
  echo "lq_$name rc=$? seconds=$(( $(date +%s) - start ))" >> $log
done
