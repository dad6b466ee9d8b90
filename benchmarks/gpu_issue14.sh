#!/usr/bin/env bash
# Issue 14 on a lent GPU, as one prepared script: the independent-key recipe at airbench94's
# compute (full-width fastnet, 10 epochs) and its plain twin, then airbench96 on the fold (the
# recipe invariant96, 3 seeds) and its plain twin, then third seeds, then the tables. Each run
# starts only while the time budget lasts, and every run resumes, so the script can simply be
# started again on the next lent machine.
#   bash benchmarks/gpu_issue14.sh DATA RUNS_DIR [BUDGET_SECONDS]
set -u
COMMON=(--device cuda --resume)
source "$(dirname "$0")/gpu_budget.sh"
mkdir -p "$RUNS"
for seed in 0 1; do
  run "invariant-s$seed" --recipe invariant --seed "$seed"
  run "plain-s$seed" --recipe fast --keys plain --seed "$seed"  # the gap's other end
done
for seed in 0 1 2; do
  run "invariant96-s$seed" --recipe invariant96 --seed "$seed"
  [ "$seed" = 0 ] && run "plain96-s$seed" --recipe invariant96 --keys plain --stem plain --seed "$seed"
done
run invariant-s2 --recipe invariant --seed 2
run plain-s2 --recipe fast --keys plain --seed 2
run plain96-s1 --recipe invariant96 --keys plain --stem plain --seed 1
$KEYLESS report --mean "$RUNS"/*/ --out "$RUNS/table.md"
