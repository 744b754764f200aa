#!/usr/bin/env bash
# Interop checks with real clients: grpcurl, Python grpcio, curl (metrics, gRPC-Web), over
# plaintext and TLS with tokens. Sets up what it needs under target/; prints
# "N passed, N failed" last and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=$ROOT/target/interop
VENV=$ROOT/target/interop-venv
mkdir -p "$WORK"
rm -rf "${WORK:?}"/run-*

passed=0
failed=0
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/    /' | head -20; }
# relay CMD... : counts the `PASS name` / `FAIL name: why` lines CMD prints.
relay() {
  local verdict rest
  while read -r verdict rest; do
    case "$verdict" in
      PASS) pass "$rest" ;;
      FAIL) fail "$rest" ;;
      burst:|producers:|fleet:|flood:) echo "$verdict $rest" ;;
    esac
  done < <("$@" 2>&1)
}
# check NAME PATTERN CMD... : passes when CMD's output matches the extended regex PATTERN.
check() {
  local name=$1 pattern=$2; shift 2
  local out
  out=$("$@" 2>&1)
  if grep -Eq -- "$pattern" <<<"$out"; then pass "$name"; else fail "$name" "$out"; fi
}

echo "== setting up (virtualenv, release build)"
# The burst check opens a thousand connections at once on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" || exit 1
"$VENV/bin/pip" install -q -r tests/interop/requirements.txt -r examples/webhook-frontend/requirements.txt || exit 1
GRPCURL=$VENV/bin/grpcurl
PY=$VENV/bin/python
export BS_GEN=$WORK/gen
rm -rf "$BS_GEN" && mkdir -p "$BS_GEN"
"$PY" -m grpc_tools.protoc -Iproto --python_out="$BS_GEN" --grpc_python_out="$BS_GEN" \
  proto/batchscaler/v1/batchscaler.proto || exit 1
cargo build --release --bin batch-scaler || exit 1
BIN=$ROOT/target/release/batch-scaler

# start NAME ARGS... : starts the service on port 0 (seeded from $SEED, default
# tests/interop/hras.yaml), sets ADDR and METRICS from its log.
start() {
  local name=$1; shift
  local log=$WORK/run-$name.log
  "$BIN" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --seed "${SEED:-tests/interop/hras.yaml}" \
    --window "${WINDOW:-200ms}" "$@" >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=($!)
  # Tenths of a second to wait for it (a seed of thousands of HRAs takes longer to read).
  for _ in $(seq "${START_TRIES:-100}"); do
    ADDR=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$log" | head -1)
    METRICS=$(sed -n 's|.*metrics on http://\([0-9.:]*\)/metrics.*|\1|p' "$log" | head -1)
    [ -n "$ADDR" ] && [ -n "$METRICS" ] && return 0
    sleep 0.1
  done
  fail "service $name starts" "$(cat "$log")"
  echo; echo "$passed passed, $failed failed"; exit 1
}

echo "== plaintext instance"
start plain --cors-allow-origin http://dashboard.example --allowed-namespaces ci,ml
PLAIN_PID=$LAST_PID
check "grpcurl list shows the service and health" \
  "batchscaler.v1.BatchScaler" "$GRPCURL" -plaintext "$ADDR" list
check "grpcurl list shows health" "grpc.health.v1.Health" "$GRPCURL" -plaintext "$ADDR" list
check "grpcurl describe ScaleEvent" "string job_id = 6" \
  "$GRPCURL" -plaintext "$ADDR" describe batchscaler.v1.ScaleEvent
check "grpcurl describe shows the proto's comments" "// A producer streams any number of events" \
  "$GRPCURL" -plaintext "$ADDR" describe batchscaler.v1.BatchScaler.Publish

"$GRPCURL" -plaintext -d '{"replay": 5}' -max-time 4 "$ADDR" batchscaler.v1.BatchScaler/WatchBatches \
  >"$WORK/run-watch.out" 2>&1 &
PIDS+=($!)
sleep 0.5
check "grpcurl Scale" "^\{" "$GRPCURL" -plaintext \
  -d '{"namespace":"ci","name":"arm","amount":1,"duration":"60s"}' "$ADDR" batchscaler.v1.BatchScaler/Scale
sleep 0.8
check "grpcurl GetTarget shows the reservation" '"reservedReplicas": 1' "$GRPCURL" -plaintext \
  -d '{"namespace":"ci","name":"arm"}' "$ADDR" batchscaler.v1.BatchScaler/GetTarget
check "grpcurl ListTargets" '"name": "gpu"' "$GRPCURL" -plaintext -d '{}' "$ADDR" \
  batchscaler.v1.BatchScaler/ListTargets
sleep 3
check "grpcurl WatchBatches streams the batch" '"outcome": "OUTCOME_APPLIED"' cat "$WORK/run-watch.out"
check "grpcurl invalid event names the field" "Message: name: must be a DNS-1123 subdomain" "$GRPCURL" -plaintext \
  -d '{"namespace":"ci","name":"Bad_Name","amount":1}' "$ADDR" batchscaler.v1.BatchScaler/Scale
check "disallowed namespace is PERMISSION_DENIED" "PermissionDenied" "$GRPCURL" -plaintext \
  -d '{"namespace":"prod","name":"secret","amount":1}' "$ADDR" batchscaler.v1.BatchScaler/Scale
check "Python producer (1,000 events, 3 HRAs) and watcher add up" "reserved grew by 1000" \
  "$PY" tests/interop/pyclient.py --target "$ADDR" --events 1000 --hra ci/linux --hra ci/arm --hra ml/gpu
check "health check says SERVING" '"status": "SERVING"' "$GRPCURL" -plaintext "$ADDR" grpc.health.v1.Health/Check
check "health of the service says SERVING" '"status": "SERVING"' "$GRPCURL" -plaintext \
  -d '{"service":"batchscaler.v1.BatchScaler"}' "$ADDR" grpc.health.v1.Health/Check
check "/metrics counts the accepted events" 'batch_scaler_events_received_total\{result="accepted"\} 1001' \
  curl -sf "http://$METRICS/metrics"
check "/metrics counts applied batches" 'batch_scaler_batches_total\{outcome="applied"\} [1-9]' \
  curl -sf "http://$METRICS/metrics"
check "/readyz is ready" "^ok" curl -sf "http://$METRICS/readyz"

# gRPC-Web: a framed GetTarget request (flag 0, length 8, TargetRef{namespace:"ci",name:"arm"}).
printf '\x00\x00\x00\x00\x09\x0a\x02ci\x12\x03arm' >"$WORK/run-web.bin"
check "gRPC-Web GetTarget gets a framed answer" "grpc-status: ?0" sh -c \
  "curl -s -i -X POST -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1' \
   -H 'origin: http://dashboard.example' --data-binary @$WORK/run-web.bin \
   http://$ADDR/batchscaler.v1.BatchScaler/GetTarget | tr -d '\r\000'"
check "gRPC-Web answer carries CORS for the allowed origin" "access-control-allow-origin: http://dashboard.example" sh -c \
  "curl -s -i -X POST -H 'content-type: application/grpc-web+proto' -H 'origin: http://dashboard.example' \
   --data-binary @$WORK/run-web.bin http://$ADDR/batchscaler.v1.BatchScaler/GetTarget | tr -d '\r\000' | tr A-Z a-z"
printf '\x00\x00\x00\x00\x0e\x0a\x04prod\x12\x06secret' >"$WORK/run-web-denied.bin"
check "gRPC-Web to a disallowed namespace is PERMISSION_DENIED (7)" "grpc-status: ?7" sh -c \
  "curl -s -i -X POST -H 'content-type: application/grpc-web+proto' --data-binary @$WORK/run-web-denied.bin \
   http://$ADDR/batchscaler.v1.BatchScaler/GetTarget | tr -d '\r\000'"

echo "== the README's 'Operating it' commands, in order, on the embedded seed"
"$BIN" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --window 200ms >"$WORK/run-readme.log" 2>&1 &
PIDS+=($!)
README_PID=$!
README_ADDR=
for _ in $(seq 100); do
  README_ADDR=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$WORK/run-readme.log" | head -1)
  [ -n "$README_ADDR" ] && break
  sleep 0.1
done
{
  # grpcurl as the README calls it, bounded (WatchBatches streams until stopped).
  printf 'grpcurl() { timeout 5 %q "$@"; }\n' "$GRPCURL"
  awk '/^## Operating it/{f=1} f&&/^```sh/{c++; if(c==1){p=1; next}} p&&/^```/{exit} p' README.md \
    | sed "s/^A=127.0.0.1:50051/A=$README_ADDR/"
} >"$WORK/run-readme.sh"
(cd "$WORK" && bash run-readme.sh) >"$WORK/run-readme.out" 2>&1
check "README: Scale then ScaleAndWait of its completion print the applied batch" '"completed": 1' cat "$WORK/run-readme.out"
check "README: Publish from events.jsonl prints accepted 2" '"accepted": "2"' cat "$WORK/run-readme.out"
check "README: WatchBatches replays the applied batches" '"outcome": "OUTCOME_APPLIED"' cat "$WORK/run-readme.out"
check "README: GetTarget carries the HRA's last batch" '"lastBatch": \{' cat "$WORK/run-readme.out"
check "README: health says SERVING" '"status": "SERVING"' cat "$WORK/run-readme.out"
check "README: the memory backend counts the seed's 4 HRAs" 'memory backend ready hras=4 runner_targets=4' cat "$WORK/run-readme.log"
kill "$README_PID" 2>/dev/null

echo "== producers at full speed (Python grpcio: one small DATA frame per message)"
# 4 producers x 12 Publish streams x 8,000 events: h2's flood protection must never cut them
# (it did with hyper's default 1 MiB windows); the pending bounds are raised, this is about the
# transport.
start producers --max-pending-per-hra 1000000 --max-pending-events 10000000
relay "$PY" tests/interop/producers.py --target "$ADDR" --metrics "$METRICS" --pid "$LAST_PID" \
  --producers 4 --streams 12 --events 8000
kill "$LAST_PID" 2>/dev/null

echo "== hostile clients: limits, roles, bounded errors, browser headers"
printf 'dash read\nhook produce\n' >"$WORK/run-roles.tokens"
start attacks --auth-token-file "$WORK/run-roles.tokens" --preface-timeout 2s
relay "$PY" tests/interop/attacks.py --target "$ADDR" --pid "$LAST_PID"
kill "$LAST_PID" 2>/dev/null

echo "== TLS instance with tokens and client certificates"
TLS=$WORK/run-tls
mkdir -p "$TLS"
(
  cd "$TLS"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=interop-ca
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext
  openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=producer
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext
  printf '# producers\ns3cr3t-token\n' >tokens
) >/dev/null 2>&1 || { fail "generating certificates"; }
start tls --tls-cert "$TLS/server.pem" --tls-key "$TLS/server.key" --tls-client-ca "$TLS/ca.pem" \
  --auth-token-file "$TLS/tokens" --log-format json
TLSARGS=(-cacert "$TLS/ca.pem" -cert "$TLS/client.pem" -key "$TLS/client.key" -servername localhost)
EV='{"namespace":"ci","name":"arm","amount":1}'
check "TLS: no token is UNAUTHENTICATED" "Unauthenticated" "$GRPCURL" "${TLSARGS[@]}" -d "$EV" "$ADDR" \
  batchscaler.v1.BatchScaler/Scale
check "TLS: wrong token is UNAUTHENTICATED" "Unauthenticated" "$GRPCURL" "${TLSARGS[@]}" \
  -H "authorization: Bearer nope" -d "$EV" "$ADDR" batchscaler.v1.BatchScaler/Scale
check "TLS: right token is OK" "^\{" "$GRPCURL" "${TLSARGS[@]}" -H "authorization: Bearer s3cr3t-token" \
  -d "$EV" "$ADDR" batchscaler.v1.BatchScaler/Scale
check "TLS: health stays open without a token" '"status": "SERVING"' "$GRPCURL" "${TLSARGS[@]}" "$ADDR" \
  grpc.health.v1.Health/Check
sleep 0.6
check "--log-format json: one JSON object per line, batch lines carry every counter" "^ok" "$PY" -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
batch = [l for l in lines if l.get("outcome") == "applied"]
keys = {"namespace", "name", "outcome", "batch_id", "attempt", "events", "before", "expired", "added", "completed", "after"}
print("ok" if batch and all(keys <= set(b) for b in batch) else f"no complete batch line in {lines}")
' "$WORK/run-tls.log"
check "TLS: no client certificate is refused" "(Failed to dial|certificate|handshake)" "$GRPCURL" \
  -cacert "$TLS/ca.pem" -servername localhost "$ADDR" grpc.health.v1.Health/Check

echo "== reference webhook frontend (examples/webhook-frontend)"
start hooks
HOOKS_ADDR=$ADDR
HOOKS_PID=$LAST_PID
SECRET=interop-webhook-secret
check "frontend refuses to start without a secret" "GITHUB_WEBHOOK_SECRET is not set" env -u GITHUB_WEBHOOK_SECRET \
  "$PY" examples/webhook-frontend/frontend.py --listen 127.0.0.1:0 --target "$HOOKS_ADDR" --routes tests/interop/routes.yaml
# start_frontend NAME TARGET ARGS... : starts the reference frontend; sets FRONTEND (empty if
# it did not start).
start_frontend() {
  local name=$1 target=$2; shift 2
  local log=$WORK/run-frontend-$name.log
  GITHUB_WEBHOOK_SECRET=$SECRET "$PY" examples/webhook-frontend/frontend.py --listen 127.0.0.1:0 \
    --target "$target" --deadline 3 "$@" >"$log" 2>&1 &
  FRONTEND_PID=$!
  PIDS+=($!)
  FRONTEND=""
  for _ in $(seq 100); do
    FRONTEND=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$log" | head -1)
    [ -n "$FRONTEND" ] && return 0
    sleep 0.1
  done
  fail "frontend ($name) starts" "$(cat "$log")"
}
start_frontend routes "$HOOKS_ADDR" --routes tests/interop/routes.yaml
ROUTES_FRONTEND=$FRONTEND
if [ -n "$ROUTES_FRONTEND" ]; then
  check "frontend /healthz answers ok, as its README says" '^ok$' curl -sf "http://$ROUTES_FRONTEND/healthz"
  relay "$PY" tests/interop/frontend_check.py --frontend "http://$ROUTES_FRONTEND" --target "$HOOKS_ADDR" --secret "$SECRET"
fi

echo "== reference webhook frontend without a routes file (server-side routing)"
SEED=tests/interop/routing.yaml start routed
ROUTED_ADDR=$ADDR
check "grpcurl ScaleJobs answers each job on one stream, a bad one with its code" \
  '"code": 3.*"outcome": "OUTCOME_APPLIED"' sh -c "printf '%s\n' \
  '{\"action\":\"queued\",\"repository\":\"my-org/my-repo\",\"labels\":[\"linux\",\"x64\"],\"job_id\":\"9001\",\"event_id\":\"d-9001\",\"wait\":true,\"wait_timeout\":\"5s\"}' \
  '{\"action\":\"queued\",\"repository\":\"my-org/my-repo\",\"event_id\":\"d-9002\"}' \
  | $GRPCURL -plaintext -d @ $ROUTED_ADDR batchscaler.v1.BatchScaler/ScaleJobs | tr '\n' ' '"
start_frontend routed "$ROUTED_ADDR" --record "$WORK/deliveries.jsonl" --record-max-bytes 6000
if [ -n "$FRONTEND" ]; then
  relay "$PY" tests/interop/frontend_check.py --server-side --frontend "http://$FRONTEND" \
    --target "$ROUTED_ADDR" --secret "$SECRET"
  sleep 1.5  # the recording is flushed once a second
  relay "$PY" tests/interop/record_check.py "$WORK/deliveries.jsonl" "$BIN" tests/interop/routing.yaml
fi

echo "== traces across processes: the frontend's delivery span is the parent of batch-scaler's"
cargo build -q -p batch-scaler-testkit --bin otlp-receiver || exit 1
rm -f "$WORK/run-otlp-endpoint" "$WORK/run-spans.jsonl"
"$ROOT/target/debug/otlp-receiver" "$WORK/run-otlp-endpoint" "$WORK/run-spans.jsonl" >"$WORK/run-otlp.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/run-otlp-endpoint" ] && break; sleep 0.1; done
OTLP=$(cat "$WORK/run-otlp-endpoint")
SEED=tests/interop/routing.yaml start traced --otlp-endpoint "$OTLP" --log-format json
TRACED_ADDR=$ADDR
OTEL_EXPORTER_OTLP_ENDPOINT=$OTLP start_frontend traced "$TRACED_ADDR"
if [ -n "$FRONTEND" ]; then
  relay "$PY" tests/interop/traces_check.py --frontend "http://$FRONTEND" --secret "$SECRET" \
    --spans "$WORK/run-spans.jsonl" --log "$WORK/run-traced.log"
fi

echo "== matrix burst: 1,000 deliveries at once through the frontend, batch-scaler at its default window"
SEED=tests/interop/burst.yaml WINDOW=3s start burst
BURST_ADDR=$ADDR
start_frontend burst "$BURST_ADDR" --deadline 8
if [ -n "$FRONTEND" ]; then
  relay "$PY" tests/interop/burst.py --check --frontend "$FRONTEND" --secret "$SECRET" --deliveries 1000 \
    --target "$BURST_ADDR" --frontend-pid "$FRONTEND_PID" --max-rss-mib 200
  check "frontend /metrics counts the 1,000 deliveries answered 200" \
    'webhook_frontend_deliveries_total\{code="200"\} 1000(\.0)?$' curl -sf "http://$FRONTEND/metrics"
  check "frontend /metrics has the answer latency histogram" 'webhook_frontend_answer_seconds_count 1000(\.0)?$' \
    curl -sf "http://$FRONTEND/metrics"
  check "frontend /metrics has nothing in flight after the burst" '^webhook_frontend_in_flight 0(\.0)?$' \
    curl -sf "http://$FRONTEND/metrics"
  echo "== deep backlog: 10,000 deliveries at once, all routed to one HRA"
  relay "$PY" tests/interop/burst.py --check --frontend "$FRONTEND" --secret "$SECRET" --deliveries 10000 \
    --pools 1 --first-job 8000000 --target "$BURST_ADDR"
fi

echo "== drift repair: the release binary against the fake GitHub (flags and env)"
cargo build -q -p batch-scaler-testkit --bin fake-github || exit 1
rm -f "$WORK/run-gh-url"
"$ROOT/target/debug/fake-github" "$WORK/run-gh-url" "$WORK/run-gh-token" /orgs/my-org/hooks/1/deliveries \
  my-org/small small 9101 completed >"$WORK/run-fake-github.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/run-gh-url" ] && break; sleep 0.1; done
BATCH_SCALER_GITHUB_TOKEN_FILE=$WORK/run-gh-token BATCH_SCALER_GITHUB_HOOK=org/my-org/1 \
  SEED=tests/interop/dashboard.yaml WINDOW=300ms start drift --github-api-url "$(cat "$WORK/run-gh-url")" \
  --github-poll-interval 200ms --github-verify-after 2s
DRIFT_ADDR=$ADDR DRIFT_METRICS=$METRICS
verified='batch_scaler_verified_reservations_total\{result="completed"\} 1$'
for _ in $(seq 150); do curl -sf "http://$DRIFT_METRICS/metrics" | grep -Eq "$verified" && break; sleep 0.1; done
check "the failed queued delivery is recovered once" 'batch_scaler_recovered_deliveries_total\{result="queued"\} 1$' \
  curl -sf "http://$DRIFT_METRICS/metrics"
check "the job GitHub reports completed loses its reservation after --github-verify-after" "$verified" \
  curl -sf "http://$DRIFT_METRICS/metrics"
check "a batch result says it came from a recovered delivery" '"recovered": 1' \
  timeout 3 "$GRPCURL" -plaintext -d '{"replay":20}' "$DRIFT_ADDR" batchscaler.v1.BatchScaler/WatchBatches
check "a batch result says it came from a verification" '"verified": 1' \
  timeout 3 "$GRPCURL" -plaintext -d '{"replay":20}' "$DRIFT_ADDR" batchscaler.v1.BatchScaler/WatchBatches
check "GetStats counts recovered deliveries and verified reservations" '"deliveriesRecovered": "1"' \
  "$GRPCURL" -plaintext "$DRIFT_ADDR" batchscaler.v1.BatchScaler/GetStats
check "a bad --github-hook stops the service at start, naming the flag" "--github-hook" \
  "$BIN" --github-token-file "$WORK/run-gh-token" --github-hook org/only-two
export DASH_DRIFT_ADDR=$DRIFT_ADDR

echo "== dashboard in headless Chromium"
if [ ! -x /usr/bin/chromium ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || fail "installing Debian chromium"
fi
(cd web && npm ci --no-audit --no-fund --loglevel=error) >/dev/null 2>&1 || fail "npm ci in web/"
printf 'dash-token\n' >"$WORK/run-dash-tokens"
DASH_SEED=$ROOT/tests/interop/dashboard.yaml
SEED=$DASH_SEED WINDOW=1s start dashauth --auth-token-file "$WORK/run-dash-tokens"
DASH_AUTH_ADDR=$ADDR
# Many HRAs and a short window: thousands of results in seconds, for the bounded-memory check.
{
  echo "apiVersion: v1"; echo "kind: List"; echo "items:"
  for i in $(seq 0 99); do
    echo "- {apiVersion: actions.summerwind.dev/v1alpha1, kind: HorizontalRunnerAutoscaler, metadata: {name: h$i, namespace: flood}, spec: {scaleTargetRef: {name: h$i}}}"
  done
} >"$WORK/flood.yaml"
SEED=$WORK/flood.yaml WINDOW=20ms start dashflood
export DASH_FLOOD_ADDR=$ADDR
# Fleets: 5,000 and 20,000 HRAs in 50 namespaces (HRA hK in namespace ns(K mod 50)); ns0/h0
# carries a 5 KB annotation, over the fleet service's --max-hra-bytes: its batches fail.
big=$(printf 'a%.0s' $(seq 5000))
for size in 5000 20000; do
  {
    echo "apiVersion: v1"; echo "kind: List"; echo "items:"
    echo "- {apiVersion: actions.summerwind.dev/v1alpha1, kind: HorizontalRunnerAutoscaler, metadata: {name: h0, namespace: ns0, annotations: {note: $big}}, spec: {scaleTargetRef: {name: h0}, maxReplicas: 10}}"
    for i in $(seq 1 $((size - 1))); do
      echo "- {apiVersion: actions.summerwind.dev/v1alpha1, kind: HorizontalRunnerAutoscaler, metadata: {name: h$i, namespace: ns$((i % 50))}, spec: {scaleTargetRef: {name: h$i}, maxReplicas: 10}}"
    done
  } >"$WORK/fleet-$size.yaml"
done
SEED=$WORK/fleet-5000.yaml WINDOW=1s START_TRIES=600 start dashfleet --max-hra-bytes 4000
export DASH_FLEET_ADDR=$ADDR
SEED=$WORK/fleet-20000.yaml WINDOW=1s START_TRIES=1800 start dashfleet20k
export DASH_FLEET20K_ADDR=$ADDR
SEED=$DASH_SEED WINDOW=1s start dashboard
DASH_ADDR=$ADDR
export DASH_PID=$LAST_PID DASH_BIN=$BIN DASH_SEED
check "dashboard page is served at /" "<title>batch-scaler</title>" curl -sf "http://$DASH_ADDR/"
relay env -C web node test/dashboard.mjs "http://$DASH_ADDR/" "$GRPCURL" "$DASH_ADDR" "$ROOT/docs" 1000 \
  "http://$DASH_AUTH_ADDR/" dash-token
ls "$ROOT"/docs/dashboard-*.png 2>/dev/null | sed 's/^/screenshot: /'

echo "== graceful stop"
kill -TERM "$PLAIN_PID"
if wait "$PLAIN_PID"; then pass "SIGTERM: exits 0"; else fail "SIGTERM: exits 0" "$(tail -5 "$WORK/run-plain.log")"; fi
if [ -n "$ROUTES_FRONTEND" ]; then
  kill -TERM "$HOOKS_PID" 2>/dev/null; wait "$HOOKS_PID" 2>/dev/null
  relay "$PY" tests/interop/frontend_check.py --stopped --frontend "http://$ROUTES_FRONTEND" --target "$HOOKS_ADDR" --secret "$SECRET"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
