#!/usr/bin/env bash
# Every attack report behind SECURITY.md, then its tables and the privacy-utility chart:
# PE, LE, ELE and EtC, each under independent keys and under one common key (seed 0).
#   bash benchmarks/security_reports.sh [DATA] [BUDGET_MINUTES] [ATTACKER_IMAGES]
# Finished reports (report.json present) are kept; delete a folder to measure it again.
set -euo pipefail
DATA=${1:-../shared/data/cifar10/cifar10.npz}
BUDGET=${2:-10}
ATTACKERS=${3:-50000}
KEYLESS=${KEYLESS:-.venv/bin/keyless}
PYTHON=${PYTHON:-.venv/bin/python}
ATTACKS=keyspace,fr,fr-advanced,helper,itn,itn-unet,invariant,gan
for cipher in pe le ele etc; do
  for keys in independent common; do
    out=benchmarks/reports/$cipher-$keys
    [ -f "$out/report.json" ] && continue
    "$KEYLESS" attack --data "$DATA" --cipher "$cipher" --keys "$keys" --attacks "$ATTACKS" \
      --victims 1000 --attacker-images "$ATTACKERS" --budget-minutes "$BUDGET" --seed 0 --out "$out"
  done
done
"$PYTHON" benchmarks/security_table.py --update SECURITY.md
"$PYTHON" benchmarks/privacy_chart.py --reports benchmarks/reports --records results benchmarks/records \
  --out benchmarks/privacy.png
