"""Interop check with the real Python gRPC stack: a producer publishes events across HRAs on
one Publish stream while a watcher counts the batch results; both must add up."""
import argparse
import os
import sys
import threading
import time

import grpc

sys.path.insert(0, os.environ["BS_GEN"])
from batchscaler.v1 import batchscaler_pb2 as pb  # noqa: E402
from batchscaler.v1 import batchscaler_pb2_grpc as rpc  # noqa: E402
from google.protobuf.duration_pb2 import Duration  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--hra", action="append", required=True, help="namespace/name")
    args = ap.parse_args()
    hras = [h.split("/", 1) for h in args.hra]
    channel = grpc.insecure_channel(args.target)
    stub = rpc.BatchScalerStub(channel)

    before = {tuple(h): stub.GetTarget(pb.TargetRef(namespace=h[0], name=h[1])).reserved_replicas for h in hras}
    seen = {"events": 0, "added": 0, "batches": 0}
    done = threading.Event()
    stream = stub.WatchBatches(pb.WatchBatchesRequest())

    def watch():
        try:
            for r in stream:
                if r.outcome == pb.OUTCOME_APPLIED and [r.namespace, r.name] in hras:
                    seen["events"] += r.events
                    seen["added"] += r.added
                    seen["batches"] += 1
                    if seen["events"] >= args.events:
                        done.set()
                        return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                print(f"watch failed: {e}", file=sys.stderr)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.3)  # let the watch stream open before the first batch

    def events():
        for i in range(args.events):
            ns, name = hras[i % len(hras)]
            yield pb.ScaleEvent(namespace=ns, name=name, amount=1, duration=Duration(seconds=600))

    summary = stub.Publish(events())
    print(f"published: accepted={summary.accepted} duplicates={summary.duplicates}")
    ok = done.wait(30)
    stream.cancel()
    after = {tuple(h): stub.GetTarget(pb.TargetRef(namespace=h[0], name=h[1])).reserved_replicas for h in hras}
    grown = sum(after[k] - before[k] for k in after)
    print(f"watched: batches={seen['batches']} events={seen['events']} added={seen['added']}; reserved grew by {grown}")
    if not ok or summary.accepted != args.events or seen["events"] != args.events or seen["added"] != args.events:
        return 1
    return 0 if grown == args.events else 1


if __name__ == "__main__":
    sys.exit(main())
