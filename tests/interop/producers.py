"""Producers as a non-Rust client writes them (Python grpcio, which sends each streamed message
as its own small HTTP/2 DATA frame): P producers, each on its own channel, each sending S
Publish streams one after another of E job-named events (queued, then completed). No stream may
be cut, every event must be accounted for (accepted + duplicates), the service must close no
connection with a GOAWAY error, and its peak RSS must stay bounded.

  producers.py --target ADDR --metrics ADDR --pid PID [--producers 4 --streams 12 --events 8000]

Prints `PASS ...` / `FAIL ...` lines and a `producers:` summary line."""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

HRAS = [("ci", "linux"), ("ci", "arm"), ("ml", "gpu"), ("prod", "secret")]


def produce(target: str, index: int, streams: int, events: int) -> dict:
    import grpc

    sys.path.insert(0, os.environ["BS_GEN"])
    from batchscaler.v1 import batchscaler_pb2 as pb
    from batchscaler.v1 import batchscaler_pb2_grpc as rpc

    namespace, name = HRAS[index % len(HRAS)]
    channel = grpc.insecure_channel(target)
    stub = rpc.BatchScalerStub(channel)
    out = {"accepted": 0, "duplicates": 0, "cut": [], "sent": 0}
    for s in range(streams):
        def messages(s=s):
            for i in range(events):
                job = f"{index:02d}{s:03d}{i // 2:06d}"
                yield pb.ScaleEvent(
                    namespace=namespace,
                    name=name,
                    amount=1 if i % 2 == 0 else -1,
                    job_id=job,
                    event_id=f"p{index}-s{s}-e{i}",
                )

        try:
            summary = stub.Publish(messages(), timeout=120)
            out["accepted"] += summary.accepted
            out["duplicates"] += summary.duplicates
        except grpc.RpcError as e:
            out["cut"].append(f"stream {s}: {e.code().name} {e.details()}")
        out["sent"] += events
    return out


def metric(addr: str, series: str) -> float:
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def peak_rss_mib(pid: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--metrics")
    ap.add_argument("--pid")
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--streams", type=int, default=12)
    ap.add_argument("--events", type=int, default=8000)
    ap.add_argument("--max-rss-mib", type=float, default=256)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(produce(args.target, args.one, args.streams, args.events)))
        return 0
    started = time.monotonic()
    # One process per producer: a producer at full speed, as separate frontends are.
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--target", args.target, "--one", str(i),
             "--streams", str(args.streams), "--events", str(args.events)],
            stdout=subprocess.PIPE, text=True)
        for i in range(args.producers)
    ]
    results = [json.loads(c.communicate()[0]) for c in children]
    took = time.monotonic() - started
    cut = [f"producer {i} {c}" for i, r in enumerate(results) for c in r["cut"]]
    sent = sum(r["sent"] for r in results)
    counted = sum(r["accepted"] + r["duplicates"] for r in results)
    total_streams = args.producers * args.streams
    goaways = metric(args.metrics, 'batch_scaler_connections_closed_total{reason="goaway_enhance_your_calm"}') if args.metrics else 0
    rss = peak_rss_mib(args.pid) if args.pid else float("nan")
    print(f"producers: {args.producers} x {args.streams} streams x {args.events} events in {took:.1f} s: "
          f"{len(cut)} of {total_streams} streams cut, {counted} of {sent} events accounted for, "
          f"{goaways:.0f} GOAWAY ENHANCE_YOUR_CALM, service peak RSS {rss:.1f} MiB")
    for c in cut[:5]:
        print(f"    {c}")
    ok = lambda cond, name: print(("PASS " if cond else "FAIL ") + name)
    ok(not cut, f"producers: no Publish stream cut ({len(cut)} of {total_streams})")
    ok(counted == sent, f"producers: every event accounted for ({counted} of {sent})")
    ok(goaways == 0, "producers: no connection closed with GOAWAY ENHANCE_YOUR_CALM")
    if args.pid:
        ok(rss <= args.max_rss_mib, f"producers: service peak RSS {rss:.1f} MiB <= {args.max_rss_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
