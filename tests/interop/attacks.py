"""A short version of the hostile-client probes, against the release binary started with a
token file of roles (dash: read, hook: produce) and short connection deadlines:

  attacks.py --target ADDR --pid PID

Prints `PASS ...` / `FAIL ...` lines."""
import argparse
import os
import socket
import subprocess
import sys
import time

import grpc

sys.path.insert(0, os.environ["BS_GEN"])
from batchscaler.v1 import batchscaler_pb2 as pb  # noqa: E402
from batchscaler.v1 import batchscaler_pb2_grpc as rpc  # noqa: E402


def ok(cond: bool, name: str, detail: str = "") -> None:
    print(("PASS " if cond else "FAIL ") + name + (f": {detail}" if detail and not cond else ""))


def rss_mib(pid: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def with_token(token: str):
    return [("authorization", f"Bearer {token}")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--pid", required=True)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    channel = grpc.insecure_channel(args.target)
    stub = rpc.BatchScalerStub(channel)

    # 1. Health watches without a token: a small budget per connection, the rest refused.
    # grpc.health.v1.Health/Watch with an empty HealthCheckRequest, raw bytes both ways.
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch",
                                 request_serializer=lambda b: b, response_deserializer=lambda b: b)
    before = rss_mib(args.pid)
    watches, refused = [], 0
    for _ in range(200):
        call = watch(b"")
        try:
            next(call)
            watches.append(call)
        except grpc.RpcError as e:
            refused += e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    grown = rss_mib(args.pid) - before
    ok(len(watches) == 32 and refused == 168,
       f"attacks: 200 health watches on one connection without a token: {len(watches)} held, {refused} RESOURCE_EXHAUSTED, RSS +{grown:.1f} MiB")
    for w in watches:
        w.cancel()

    # 2. Hundreds of silent connections: a new client is still served, and they are closed.
    silent = [socket.create_connection((host, int(port))) for _ in range(300)]
    started = time.monotonic()
    fresh = rpc.BatchScalerStub(grpc.insecure_channel(args.target))
    fresh.GetStats(pb.GetStatsRequest(), metadata=with_token("dash"), timeout=5)
    took = time.monotonic() - started
    ok(took < 2, f"attacks: a new client served in {took:.2f} s beside 300 silent connections")
    time.sleep(3)
    closed = 0
    for s in silent:
        s.settimeout(0.5)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    ok(closed == 300, f"attacks: silent connections closed after the preface timeout ({closed} of 300)")

    # 3. A huge bad value: INVALID_ARGUMENT naming the field, with a default grpcio client.
    try:
        stub.Scale(pb.ScaleEvent(namespace="ci", name="A" * 60000, amount=1), metadata=with_token("hook"))
        ok(False, "attacks: a 60 KB name is refused")
    except grpc.RpcError as e:
        ok(e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith("name: ")
           and len(e.details()) < 400,
           "attacks: a 60 KB name gets INVALID_ARGUMENT naming the field, quoted short",
           f"{e.code()} {len(e.details())} bytes")

    # 4. Roles: the dashboard's token cannot produce, a producer's cannot forward.
    for token, call, name in [
        ("dash", lambda m: stub.Scale(pb.ScaleEvent(namespace="ci", name="linux", amount=1), metadata=m), "Scale"),
        ("hook", lambda m: list(stub.Forward(iter([]), metadata=m)), "Forward"),
    ]:
        try:
            call(with_token(token))
            ok(False, f"attacks: {token} may not call {name}")
        except grpc.RpcError as e:
            ok(e.code() == grpc.StatusCode.PERMISSION_DENIED and "role" in e.details(),
               f"attacks: the {token} token calling {name} is PERMISSION_DENIED naming the role",
               f"{e.code()} {e.details()}")

    # 5. An oversized message: RESOURCE_EXHAUSTED naming the limit.
    try:
        stub.Scale(pb.ScaleEvent(namespace="ci", name="linux", amount=1, event_id="x" * 70000),
                   metadata=with_token("hook"))
        ok(False, "attacks: an oversized message is refused")
    except grpc.RpcError as e:
        ok(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-message-bytes" in e.details(),
           "attacks: an oversized message is RESOURCE_EXHAUSTED naming --max-message-bytes",
           f"{e.code()} {e.details()}")

    # 6. The browser's side, with curl: headers, Host, and gRPC-Web without a token over HTTP/2.
    page = subprocess.run(["curl", "-s", "-i", f"http://{args.target}/"], capture_output=True, text=True).stdout.lower()
    ok(all(h in page for h in ["content-security-policy: default-src 'self'", "frame-ancestors 'none'",
                               "x-frame-options: deny", "x-content-type-options: nosniff",
                               "referrer-policy: no-referrer"]),
       "attacks: the dashboard is sent with CSP, X-Frame-Options, nosniff and Referrer-Policy")
    rebound = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: attacker.example",
                              f"http://{args.target}/"], capture_output=True, text=True).stdout
    ok(rebound == "403", f"attacks: the dashboard under another Host is 403 ({rebound})")
    frame = b"\x00\x00\x00\x00\x09\x0a\x02ci\x12\x03arm"
    statuses = []
    for _ in range(5):
        out = subprocess.run(
            ["curl", "-s", "-i", "--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc-web+proto",
             "-H", "x-grpc-web: 1", "--data-binary", "@-", f"http://{args.target}/batchscaler.v1.BatchScaler/GetTarget"],
            input=frame, capture_output=True).stdout.decode(errors="replace").lower()
        statuses.append("grpc-status: 16" in out)
    ok(all(statuses), f"attacks: gRPC-Web over HTTP/2 without a token reads status 16 ({sum(statuses)} of 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
