#!/usr/bin/env bash
# The privacy dial: every key-free setting trained at one CPU budget (2 seeds) and attacked with
# every applicable attack at one budget, on the same 1,000 victims.
#   bash benchmarks/security/privacy_frontier.sh [DATA] [EPOCHS] [ATTACK_MINUTES] [ONLY]
# ONLY: a space-separated list of setting names to run (default: all); PHASES: "train", "attack"
# or both (default). Finished runs (record.json) and reports (report.json) are kept; delete a
# folder to measure it again. An attack has a time budget: run it alone on the machine.
set -euo pipefail
DATA=${1:-../shared/data/cifar10/cifar10.npz}
EPOCHS=${2:-5}
MINUTES=${3:-3}
ONLY=${4:-}
PHASES=${PHASES:-train attack}
KEYLESS=${KEYLESS:-.venv/bin/keyless}
RECORDS=benchmarks/records/privacy-frontier-cpu-amd-2026-12
REPORTS=benchmarks/reports
# name | cipher options | training options | attacks ("-": the same cipher as a row above)
SETTINGS=(
  "pe|--cipher pe|--recipe invariant|invariant"
  "pe-raw|--cipher pe|--recipe invariant --stem plain|-"  # the paper's model; attacked as pe
  "pe-noise16|--cipher pe --noise 16|--recipe invariant|invariant"
  "pe-noise32|--cipher pe --noise 32|--recipe invariant|invariant"
  "pe-scramble16|--cipher pe-scramble --block-size 16|--recipe bag|invariant,jigsaw"
  "pe-scramble8|--cipher pe-scramble --block-size 8|--recipe bag|invariant,jigsaw"
  "pe-scramble8-wide|--cipher pe-scramble --block-size 8|--recipe bag --widths 64,128,256|-"
  "pe-scramble4|--cipher pe-scramble --block-size 4|--recipe bag|invariant,jigsaw"
  "le|--cipher le|--recipe invariant --stem key-invariant|invariant"
  "ele|--cipher ele|--recipe invariant --stem plain|invariant"
  "etc|--cipher etc|--recipe invariant --stem plain|invariant"
)
selected() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
for row in "${SETTINGS[@]}"; do  # first every training, then every attack
  IFS='|' read -r name cipher training attacks <<<"$row"
  selected "$name" && [[ "$PHASES" == *train* ]] || continue
  for seed in 0 1; do
    out=$RECORDS/$name-s$seed
    [ -f "$out/record.json" ] && continue
    # the CPU width unless the row's own --widths (given later) overrides it
    # shellcheck disable=SC2086
    "$KEYLESS" train --data "$DATA" --widths 32,64,128 $cipher $training --keys independent \
      --epochs "$EPOCHS" --seed "$seed" --out "$out" --resume
  done
done
for row in "${SETTINGS[@]}"; do
  IFS='|' read -r name cipher training attacks <<<"$row"
  selected "$name" && [[ "$PHASES" == *attack* ]] && [ "$attacks" != - ] || continue
  out=$REPORTS/frontier-$name
  [ -f "$out/report.json" ] && continue
  # shellcheck disable=SC2086
  "$KEYLESS" attack --data "$DATA" $cipher --keys independent --attacks "$attacks" \
    --victims 1000 --attacker-images 50000 --budget-minutes "$MINUTES" --seed 0 --out "$out"
done
