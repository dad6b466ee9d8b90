# Sourced by the GPU scripts: `run NAME ARGS...` trains into $RUNS/NAME with $COMMON and ARGS,
# and starts only while the time budget ($BUDGET seconds from $START) lasts.
# Needs DATA, RUNS, BUDGET, START, KEYLESS and the array COMMON to be set.
run() {
  local name=$1; shift
  local left=$((BUDGET - ($(date +%s) - START)))
  if [ "$left" -lt 30 ]; then echo "skipped $name: budget spent"; return; fi
  timeout "$left" $KEYLESS train --data "$DATA" "${COMMON[@]}" --out "$RUNS/$name" "$@" \
    || echo "run $name did not finish"
}
