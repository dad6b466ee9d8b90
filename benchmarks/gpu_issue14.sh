#!/usr/bin/env bash
# Issue 14 on a lent GPU, as one prepared script: the independent-key recipes at airbench94's
# compute (full-width fastnet, 10 epochs, 3 seeds each), then the longer and wider budgets the
# 93.6 % point allows, then the tables. Each run starts only while the time budget lasts, and
# every run resumes, so the script can simply be started again on the next lent machine.
#   bash benchmarks/gpu_issue14.sh DATA RUNS_DIR [BUDGET_SECONDS]
set -u
COMMON=(--device cuda --compile --resume)
source "$(dirname "$0")/gpu_budget.sh"
mkdir -p "$RUNS"  # the CUDA-only tests first (seconds): device placement of keys and lookahead
python3 -m pytest -q -p no:cacheprovider -k cuda tests/cipher/test_base.py tests/train/test_engine.py \
  | tail -3 > "$RUNS/cuda-tests.txt" 2>&1 || true
for seed in 0 1 2; do
  run "muon-s$seed" --recipe muon --seed "$seed"
  run "invariant-s$seed" --recipe invariant --seed "$seed"
  run "plain-s$seed" --recipe fast --keys plain --seed "$seed"  # the gap's other end
done
for seed in 0 1 2; do  # the recipe that won on the CPU, wider and longer, and its plain twin
  run "invariant-wide-40-s$seed" --recipe invariant --widths 128,384,384 --epochs 40 --seed "$seed"
  run "plain-wide-40-s$seed" --recipe fast --keys plain --widths 128,384,384 --epochs 40 --seed "$seed"
done
$KEYLESS report --mean "$RUNS"/*/ --out "$RUNS/table.md"
