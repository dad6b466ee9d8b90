#!/usr/bin/env bash
# The invariant96 budget on a lent GPU, as one prepared script (about 8 minutes on an H200, data on
# the device). The `all` block ran on an H200 on 2026-12-04 at commit 53c1bf5 (records in
# benchmarks/records/invariant96-gpu-h200-2026-12/): the recipe invariant at airbench94's compute
# and its plain twin, airbench96 on the fold (invariant96) at 31 epochs and its plain twin, and
# invariant96 at 45 and 60 epochs. Still open, in order: the budget chosen on a validation split
# (not read off the test set), the plain twin at 60 epochs (the gap at the best budget), then a
# longer budget. Each run starts only while the time budget lasts, and every run resumes, so the
# script can simply be started again on the next machine.
#   bash benchmarks/gpu/gpu_invariant96_budget.sh DATA RUNS_DIR [BUDGET_SECONDS] [all]
# On a machine with torch but not keyless's other dependencies (the H200 of 2026-12-04),
# `keyless.cli` also needs cryptography (cffi, pycparser), fastapi (starlette, pydantic, pydantic-core,
# annotated-types, annotated-doc, typing-inspection, opentelemetry-api, typing-extensions),
# uvicorn, httptools and python-multipart; CIFAR-10 can travel as tools/webp_pack.py parts.
set -u
COMMON=(--device cuda --resume)
source "$(dirname "$0")/gpu_budget.sh"
mkdir -p "$RUNS"
if [ "${4:-}" = all ]; then  # the runs of 2026-12-04 (about 5 minutes)
  for seed in 0 1 2; do
    run "invariant-s$seed" --recipe invariant --seed "$seed"
    run "plain-s$seed" --recipe fast --keys plain --seed "$seed"  # the gap's other end
    run "invariant96-s$seed" --recipe invariant96 --seed "$seed"
    for epochs in 45 60; do
      run "invariant96-$epochs-s$seed" --recipe invariant96 --epochs "$epochs" --seed "$seed"
    done
  done
  run plain96-s0 --recipe invariant96 --keys plain --stem plain --seed 0
  run plain96-s1 --recipe invariant96 --keys plain --stem plain --seed 1
fi
for epochs in 31 60 90; do  # the budget on 5,000 held-out training images (seed 0)
  run "val-invariant96-$epochs" --recipe invariant96 --epochs "$epochs" --val-size 5000 --seed 0
done
for seed in 0 1 2; do
  run "plain96-60-s$seed" --recipe invariant96 --keys plain --stem plain --epochs 60 --seed "$seed"
done
for seed in 0 1 2; do
  run "invariant96-90-s$seed" --recipe invariant96 --epochs 90 --seed "$seed"
done
$KEYLESS report --mean "$RUNS"/*/ --out "$RUNS/table.md"
