#!/usr/bin/env bash
# Matrix-burst benchmark: for each burst size (default 1000 5000 10000), a fresh batch-scaler
# (release build, its default 3 s window, seeded with tests/interop/burst.yaml) behind the
# reference webhook frontend, N signed `queued` deliveries posted at once (tests/interop/burst.py),
# every job read back with GetTarget. Prints one `burst:` line per size, then the largest burst
# answered entirely (2xx) within GitHub's 10 s.
#
#   bash tests/interop/burst-bench.sh [SIZE...]
#   FRONTEND_ARGS=--unary bash tests/interop/burst-bench.sh          # one ScaleJob call per delivery
#   FRONTEND=path/to/frontend.py BS_ARGS="--max-concurrent-streams 128" bash tests/interop/burst-bench.sh 1000
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=$ROOT/target/burst
VENV=$ROOT/target/interop-venv
FRONTEND=${FRONTEND:-examples/webhook-frontend/frontend.py}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 5000 10000)
mkdir -p "$WORK"

[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" || exit 1
"$VENV/bin/pip" install -q -r tests/interop/requirements.txt -r examples/webhook-frontend/requirements.txt || exit 1
PY=$VENV/bin/python
export BS_GEN=$WORK/gen
rm -rf "$BS_GEN" && mkdir -p "$BS_GEN"
"$PY" -m grpc_tools.protoc -Iproto --python_out="$BS_GEN" --grpc_python_out="$BS_GEN" \
  proto/batchscaler/v1/batchscaler.proto || exit 1
cargo build -q --release --bin batch-scaler || exit 1
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
# wait_for LOG PATTERN : prints the first capture of PATTERN (sed -n s/PATTERN/\1/p) once logged.
wait_for() {
  local found
  for _ in $(seq 200); do
    found=$(sed -n "s/$2/\1/p" "$1" | head -1)
    [ -n "$found" ] && { echo "$found"; return 0; }
    sleep 0.1
  done
  echo "not started: $(tail -5 "$1")" >&2
  return 1
}

largest=0
for n in "${SIZES[@]}"; do
  # shellcheck disable=SC2086
  target/release/batch-scaler --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --seed tests/interop/burst.yaml ${BS_ARGS:-} >"$WORK/service-$n.log" 2>&1 &
  svc=$!
  PIDS+=("$svc")
  addr=$(wait_for "$WORK/service-$n.log" '.*listening on \([0-9.:]*\).*') || exit 1
  # shellcheck disable=SC2086
  GITHUB_WEBHOOK_SECRET=burst-secret "$PY" "$FRONTEND" --listen 127.0.0.1:0 --target "$addr" ${FRONTEND_ARGS:-} \
    >"$WORK/frontend-$n.log" 2>&1 &
  fe=$!
  PIDS+=("$fe")
  front=$(wait_for "$WORK/frontend-$n.log" '.*listening on \([0-9.:]*\).*') || exit 1
  out=$("$PY" tests/interop/burst.py --frontend "$front" --secret burst-secret --deliveries "$n" \
    --target "$addr" --frontend-pid "$fe")
  echo "$out"
  if "$PY" -c 'import json,sys; s=json.loads(sys.argv[1].split(": ",1)[1]); sys.exit(0 if s["answered_2xx_within_10s"]==s["deliveries"] else 1)' "$out"; then
    largest=$n
  fi
  kill "$fe" "$svc" 2>/dev/null
  wait "$fe" "$svc" 2>/dev/null
done
echo "largest burst answered entirely within 10 s: $largest deliveries"
