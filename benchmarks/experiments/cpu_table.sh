#!/usr/bin/env bash
# The fastnet table of every key setting on CIFAR-10, one row after another, same budget each.
# Resumable: finished rows (record.json present) are skipped, interrupted ones resume.
#   bash benchmarks/experiments/cpu_table.sh [DATA] [RUNS_DIR] [EPOCHS] [WIDTHS]
set -euo pipefail
DATA=${1:-../shared/data/cifar10/cifar10.npz}
RUNS=${2:-runs/cpu}
EPOCHS=${3:-5}
WIDTHS=${4:-32,64,128}
KEYLESS=${KEYLESS:-.venv/bin/keyless}
common=(--data "$DATA" --model fastnet --widths "$WIDTHS" --epochs "$EPOCHS" --seed 0)
row() {
  local name=$1; shift
  [ -f "$RUNS/$name/record.json" ] && return 0
  "$KEYLESS" train "${common[@]}" "$@" --out "$RUNS/$name" --resume
}
row plain --keys plain
row independent --keys independent
row independent-rekey --keys independent --rekey
row independent-invariant --keys independent --stem invariant
row common --keys common
row common-adapt --keys common --adapt
"$KEYLESS" report "$RUNS"/*/ --out "$RUNS/table.md"
