# Sourced by the GPU scripts, which take DATA RUNS_DIR [BUDGET_SECONDS] and set the array
# COMMON: `run NAME ARGS...` trains into RUNS_DIR/NAME with COMMON and ARGS, and starts only
# while the time budget (BUDGET_SECONDS from now, default 480) lasts. $KEYLESS overrides the CLI.
DATA=$1
RUNS=$2
BUDGET=${3:-480}
START=$(date +%s)
KEYLESS=${KEYLESS:-python3 -m keyless.cli}
run() {
  local name=$1; shift
  local left=$((BUDGET - ($(date +%s) - START)))
  if [ "$left" -lt 30 ]; then echo "skipped $name: budget spent"; return; fi
  timeout "$left" $KEYLESS train --data "$DATA" "${COMMON[@]}" --out "$RUNS/$name" "$@" \
    || echo "run $name did not finish"
}
