#!/usr/bin/env bash
# Every key setting on a lent GPU, as one prepared script: the fast recipe (full-width fastnet) for
# each, and shortened paper-recipe ResNet-18 / DenseNet runs with independent keys.
# Each run starts only while the time budget lasts, and resumes (the script can be started again).
#   bash benchmarks/gpu/gpu_runs.sh DATA RUNS_DIR [BUDGET_SECONDS]
set -u
COMMON=(--seed 0 --device cuda --resume)
source "$(dirname "$0")/gpu_budget.sh"
fast=(--model fastnet --epochs 10)
run fast-independent-invariant "${fast[@]}" --keys independent --stem invariant
run fast-independent "${fast[@]}" --keys independent
run fast-plain "${fast[@]}" --keys plain
run paper-resnet18-independent --recipe paper --model resnet18 --keys independent --epochs 15 --milestones 8,12
run fast-independent-rekey "${fast[@]}" --keys independent --rekey
run fast-common "${fast[@]}" --keys common
run fast-common-adapt "${fast[@]}" --keys common --adapt
run paper-densenet-independent --recipe paper --model densenet --keys independent --epochs 6 --milestones 4,5
$KEYLESS report "$RUNS"/*/ --out "$RUNS/table.md"
