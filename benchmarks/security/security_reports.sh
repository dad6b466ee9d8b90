#!/usr/bin/env bash
# Every attack report behind SECURITY.md, then its tables and the privacy-utility chart:
# PE, LE, ELE and EtC, each under independent keys and under one common key (seed 0).
#   bash benchmarks/security/security_reports.sh [DATA] [BUDGET_MINUTES] [ATTACKER_IMAGES] [INVARIANT_MINUTES]
# The invariant attack has a folder of its own per cipher and key mode (NAME-invariant, merged
# into the table by security_table.py), so it can be measured, or measured again, alone; for the
# block ciphers the chosen-plaintext helper attack (seconds) runs there too.
# Finished reports (report.json present) are kept; delete a folder to measure it again.
set -euo pipefail
DATA=${1:-../shared/data/cifar10/cifar10.npz}
BUDGET=${2:-10}
ATTACKERS=${3:-50000}
INVARIANT_BUDGET=${4:-$BUDGET}
KEYLESS=${KEYLESS:-.venv/bin/keyless}
PYTHON=${PYTHON:-.venv/bin/python}
ATTACKS=keyspace,fr,fr-advanced,helper,itn,itn-unet,gan
for cipher in pe le ele etc; do
  for keys in independent common; do
    for kind in all invariant; do
      out=benchmarks/reports/$cipher-$keys$([ "$kind" = invariant ] && echo -invariant)
      [ -f "$out/report.json" ] && continue
      attacks=$ATTACKS
      [ "$kind" = invariant ] && attacks=$([ "$cipher" = pe ] && echo invariant || echo helper,invariant)
      minutes=$([ "$kind" = invariant ] && echo "$INVARIANT_BUDGET" || echo "$BUDGET")
      "$KEYLESS" attack --data "$DATA" --cipher "$cipher" --keys "$keys" --attacks "$attacks" \
        --victims 1000 --attacker-images "$ATTACKERS" --budget-minutes "$minutes" --seed 0 \
        --out "$out"
    done
  done
done
"$PYTHON" benchmarks/security/security_table.py --update SECURITY.md
"$PYTHON" benchmarks/security/privacy_chart.py --reports benchmarks/reports --records benchmarks/records \
  --out benchmarks/security/privacy.png --update SECURITY.md
