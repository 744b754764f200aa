#!/usr/bin/env bash
# Bench (not a test): the dashboard at 1,000, 5,000 and 20,000 HRAs in headless Chromium, one
# line each: time to the first rows, DOM nodes (at the top and scrolled to the end), long-task
# milliseconds during 10 s with 200 HRAs scaled a second, and bytes fetched during 10 s of
# nothing happening. Needs what the interop run installs (its virtualenv, web/node_modules,
# /usr/bin/chromium). Usage: bash tests/interop/dashboard-bench.sh [SIZES...]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
GRPCURL=$ROOT/target/interop-venv/bin/grpcurl
[ -x "$GRPCURL" ] || { echo "run bash tests/interop/run.sh once first (it sets up $GRPCURL)"; exit 1; }
[ -d web/node_modules ] || (cd web && npm ci --silent) || exit 1
cargo build -q --release --bin batch-scaler || exit 1
WORK=$ROOT/target/interop
mkdir -p "$WORK"
for n in "${@:-1000 5000 20000}"; do
  for size in $n; do
    seed=$WORK/fleet-$size.yaml
    {
      echo "apiVersion: v1"; echo "kind: List"; echo "items:"
      for i in $(seq 0 $((size - 1))); do
        echo "- {apiVersion: actions.summerwind.dev/v1alpha1, kind: HorizontalRunnerAutoscaler, metadata: {name: h$i, namespace: ns$((i % 50))}, spec: {scaleTargetRef: {name: h$i}, maxReplicas: 10}}"
      done
    } >"$seed"
    log=$WORK/run-fleet-$size.log
    target/release/batch-scaler --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --seed "$seed" --window 1s >"$log" 2>&1 &
    pid=$!
    addr=""
    for _ in $(seq 600); do
      addr=$(grep -a -o 'listening on [0-9.:]*' "$log" | awk '{print $3}')
      [ -n "$addr" ] && break
      sleep 0.1
    done
    [ -n "$addr" ] || { echo "the service did not start: $(tail -3 "$log")"; kill "$pid"; exit 1; }
    node web/test/fleet-bench.mjs "$GRPCURL" "$addr" "$size"
    kill "$pid"; wait "$pid" 2>/dev/null
  done
done
