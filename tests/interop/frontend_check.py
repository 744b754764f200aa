"""Drives the reference webhook frontend with signed GitHub-shaped payloads and checks the
HRA with GetTarget. Prints one `PASS name` / `FAIL name: why` line per check."""
import argparse
import hashlib
import hmac
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc

sys.path.insert(0, os.environ["BS_GEN"])
from batchscaler.v1 import batchscaler_pb2 as pb  # noqa: E402
from batchscaler.v1 import batchscaler_pb2_grpc as rpc  # noqa: E402

HERE = Path(__file__).resolve().parent


def post(url, secret, name, delivery, event="workflow_job", sign=True, body=None):
    body = body if body is not None else (HERE / "webhooks" / f"{name}.json").read_bytes()
    headers = {"content-type": "application/json", "x-github-event": event, "x-github-delivery": delivery}
    if sign:
        headers["x-hub-signature-256"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(url + "/webhook", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frontend", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--stopped", action="store_true", help="only the service-stopped check")
    ap.add_argument("--server-side", action="store_true",
                    help="the frontend runs without a routes file: the service routes")
    a = ap.parse_args()
    results = []

    mode = " (server-side routing)" if a.server_side else ""

    def check(name, ok, why=""):
        results.append(ok)
        name += mode
        print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)

    if a.stopped:
        status, body = post(a.frontend, a.secret, "queued", "d-stopped")
        check("frontend: service stopped -> 503", status == 503, f"{status} {body}")
        return 0 if all(results) else 1

    stub = rpc.BatchScalerStub(grpc.insecure_channel(a.target))

    def names(ns="ci", name="linux"):
        t = stub.GetTarget(pb.TargetRef(namespace=ns, name=name))
        return [r.name for r in t.capacity_reservations]

    before = names()
    status, body = post(a.frontend, a.secret, None, "d-ping", event="ping", body=b'{"zen": "hi"}')
    check("frontend: ping -> 200", status == 200, f"{status} {body}")
    status, body = post(a.frontend, a.secret, "queued", "d-1")
    check("frontend: queued -> 200 once applied", status == 200 and "APPLIED" in body, f"{status} {body}")
    check("frontend: reservation named by the job id", names().count("4242") == 1, names())
    status, body = post(a.frontend, a.secret, "queued", "d-1")
    check("frontend: same delivery again -> no second reservation",
          status == 200 and names().count("4242") == 1, f"{status} {body} {names()}")
    status, body = post(a.frontend, a.secret, "queued", "d-1-redelivered-as-new")
    check("frontend: same job, new delivery -> still one reservation",
          status == 200 and names().count("4242") == 1, f"{status} {body} {names()}")
    bad = (HERE / "webhooks" / "queued.json").read_bytes().replace(b"4242", b"4244")
    status, body = post(a.frontend, "wrong-secret", None, "d-bad", body=bad)
    check("frontend: bad signature -> 401, nothing changed", status == 401 and "4244" not in names(), f"{status}")
    status, body = post(a.frontend, a.secret, None, "d-unsigned", sign=False, body=bad)
    check("frontend: missing signature -> 401", status == 401, f"{status}")
    status, body = post(a.frontend, a.secret, "queued_windows", "d-win")
    check("frontend: unmatched labels -> 202, nothing changed",
          status == 202 and "5151" not in names() + names("ci", "arm"), f"{status} {body}")
    status, body = post(a.frontend, a.secret, "queued_gpu_ambiguous", "d-gpu")
    if a.server_side:
        check("frontend: ambiguous route -> the first HRA, the others named",
              status == 200 and "also matched ml/gpu-b" in body and "6161" in names("ml", "gpu")
              and "6161" not in names("ml", "gpu-b"), f"{status} {body}")
    else:
        check("frontend: ambiguous route -> 409 naming the HRAs",
              status == 409 and "ml/gpu" in body and "6161" not in names("ml", "gpu"), f"{status} {body}")
    held = names()
    status, body = post(a.frontend, a.secret, "in_progress", "d-prog")
    # Recorded by the job ledger, scaling nothing: 204 when the service routes (the route
    # scales nothing), 200 when the frontend sends the record itself.
    check("frontend: in_progress -> 2xx, nothing changed",
          status == (204 if a.server_side else 200) and names() == held, f"{status} {body}")
    status, body = post(a.frontend, a.secret, "completed_skipped", "d-skip")
    check("frontend: skipped completion ignored -> 204", status == 204, f"{status}")
    status, body = post(a.frontend, a.secret, "completed", "d-2")
    check("frontend: completed -> 200, its reservation removed",
          status == 200 and "4242" not in names() and len(names()) == len(before), f"{status} {body} {names()}")
    status, body = post(a.frontend, a.secret, "queued", "d-late-redelivery")
    check("frontend: queued redelivered after completion -> nothing added", status == 200 and "4242" not in names(),
          f"{status} {body} {names()}")
    if a.server_side:
        # The frontend passed GitHub's times: the ledger counts job 4242 once (its redelivered
        # queued adds nothing), its wait (started at creation: 0 s) and its 5-minute run.
        s = stub.GetJobStats(pb.TargetRef(namespace="ci", name="linux"))
        check("frontend: GetJobStats counts the job once, its wait and its 5 min run",
              s.jobs_completed == 1 and s.wait.count == 1 and s.wait.sum.seconds == 0
              and s.run.count == 1 and s.run.sum.seconds == 300 and s.busy_runner_seconds == 300,
              str(s).replace("\n", " "))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
