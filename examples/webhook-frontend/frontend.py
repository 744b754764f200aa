#!/usr/bin/env python3
"""GitHub workflow_job webhooks -> batch-scaler.

Verifies the webhook signature and forwards each workflow job with ScaleJob (wait=true): the
service routes it to its HorizontalRunnerAutoscaler exactly as actions-runner-controller's
webhook server does (from the HRAs, RunnerDeployments and RunnerSets in the cluster), so
GitHub's delivery succeeds (200) only once the HRA is written. The job id and the delivery id
travel with the event, which makes GitHub's redeliveries harmless.

    GITHUB_WEBHOOK_SECRET=... python frontend.py --listen 0.0.0.0:8080 --target batch-scaler:50051

With --routes FILE it routes by its own table instead and publishes with ScaleAndWait (an
override for clusters whose runner objects routing cannot read).
"""
import argparse
import hashlib
import hmac
import http.server
import json
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml

HERE = Path(__file__).resolve().parent
log = logging.getLogger("frontend")


def load_stubs(proto_dir: Path):
    """Generates the Python stubs of batch-scaler's proto (once per process) and imports them."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="batchscaler-stubs-"))
    proto = "batchscaler/v1/batchscaler.proto"
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", proto])
    if rc != 0:
        raise SystemExit(f"generating stubs from {proto_dir / proto} failed")
    sys.path.insert(0, str(out))
    from batchscaler.v1 import batchscaler_pb2, batchscaler_pb2_grpc
    return batchscaler_pb2, batchscaler_pb2_grpc


@dataclass
class Route:
    hra_namespace: str
    hra_name: str
    labels: set = field(default_factory=set)
    repository: str = ""
    organization: str = ""
    enterprise: str = ""
    duration_s: int = 0

    @property
    def hra(self) -> str:
        return f"{self.hra_namespace}/{self.hra_name}"

    def matches(self, repository: str, organization: str, enterprise: str, labels: list) -> bool:
        if self.repository and self.repository.lower() != repository.lower():
            return False
        if self.organization and self.organization.lower() != organization.lower():
            return False
        if self.enterprise and self.enterprise.lower() != enterprise.lower():
            return False
        wanted = {l.lower() for l in labels if l.lower() != "self-hosted"}
        return wanted <= self.labels


DURATION = re.compile(r"^(\d+)(s|m|h)$")


def parse_duration(text) -> int:
    if isinstance(text, int):
        return text
    m = DURATION.match(str(text).strip())
    if not m:
        raise ValueError(f"duration {text!r}: use e.g. 90s, 30m or 2h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def load_routes(path: Path) -> list:
    doc = yaml.safe_load(path.read_text()) or {}
    routes = []
    for i, r in enumerate(doc.get("routes") or []):
        scopes = [k for k in ("repository", "organization", "enterprise") if r.get(k)]
        if len(scopes) != 1:
            raise ValueError(f"routes[{i}]: give exactly one of repository, organization, enterprise")
        hra = r.get("hra") or {}
        if not hra.get("namespace") or not hra.get("name"):
            raise ValueError(f"routes[{i}].hra: namespace and name are required")
        routes.append(Route(
            hra_namespace=hra["namespace"], hra_name=hra["name"],
            labels={str(l).lower() for l in r.get("labels") or []},
            repository=r.get("repository", ""), organization=r.get("organization", ""),
            enterprise=r.get("enterprise", ""),
            duration_s=parse_duration(r["duration"]) if r.get("duration") else 0,
        ))
    return routes


class Frontend:
    def __init__(self, args, pb, rpc):
        self.pb = pb
        self.secret = os.environ.get("GITHUB_WEBHOOK_SECRET", "").encode()
        self.routes = load_routes(Path(args.routes)) if args.routes else None
        self.deadline = args.deadline
        self.default_duration = parse_duration(args.default_duration) if args.default_duration else 0
        # One long-lived channel; gRPC reconnects it by itself.
        self.stub = rpc.BatchScalerStub(grpc.insecure_channel(args.target))

    def verify(self, body: bytes, signature: str) -> bool:
        if not self.secret:
            return True
        if not signature.startswith("sha256="):
            return False
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def handle(self, event: str, delivery: str, payload: dict):
        """Returns (HTTP status, message, HRA) for one verified webhook."""
        status, message, route = self.route_and_publish(event, delivery, payload)
        return status, message, route.hra if route else ""

    def route_and_publish(self, event: str, delivery: str, payload: dict):
        if event == "ping":
            return 200, "pong", None
        if event != "workflow_job":
            return 204, f"ignored event {event!r}", None
        if self.routes is None:
            return self.scale_job(delivery, payload)
        action = payload.get("action")
        job = payload.get("workflow_job") or {}
        if action == "queued":
            amount = 1
        elif action == "completed":
            conclusion = job.get("conclusion")
            if conclusion == "skipped":
                return 204, "skipped job: no runner was used", None
            if conclusion == "success" and not job.get("runner_id"):
                return 204, "successful job without a runner: nothing to release", None
            amount = -1
        else:
            return 204, f"ignored action {action!r}", None
        repo = payload.get("repository") or {}
        repository = repo.get("full_name", "")
        organization = (payload.get("organization") or {}).get("login") or (repo.get("owner") or {}).get("login", "")
        enterprise = (payload.get("enterprise") or {}).get("slug", "")
        labels = job.get("labels") or []
        matched = [r for r in self.routes if r.matches(repository, organization, enterprise, labels)]
        if not matched:
            return 202, f"no route for {repository} with labels {labels}", None
        if len(matched) > 1:
            return 409, "ambiguous: " + ", ".join(r.hra for r in matched), None
        route = matched[0]
        request = self.pb.ScaleEvent(namespace=route.hra_namespace, name=route.hra_name, amount=amount,
                                     job_id=str(job.get("id", "")), event_id=delivery)
        duration = route.duration_s or self.default_duration
        if duration:
            request.duration.seconds = duration
        status, message = self.publish(request)
        return status, message, route

    def scale_job(self, delivery: str, payload: dict):
        """Server-side routing: the service finds the HRA and answers with the batch."""
        job = payload.get("workflow_job") or {}
        repo = payload.get("repository") or {}
        request = self.pb.WorkflowJob(
            action=payload.get("action") or "", repository=repo.get("full_name", ""),
            owner_type=(repo.get("owner") or {}).get("type", ""),
            enterprise=(payload.get("enterprise") or {}).get("slug", ""),
            labels=job.get("labels") or [], conclusion=job.get("conclusion") or "",
            has_runner=job.get("runner_id") is not None, job_id=str(job.get("id") or ""),
            event_id=delivery, wait=True)
        if self.default_duration:
            request.duration.seconds = self.default_duration
        status, message, result = self.call(self.stub.ScaleJob, request)
        if result is None:
            return status, message, None
        route = result.route
        hra = f"{route.target.namespace}/{route.target.name}" if route.HasField("target") else ""
        target = Route(hra_namespace=route.target.namespace, hra_name=route.target.name) if hra else None
        if not hra:
            return (204 if route.amount == 0 else 202), route.reason, None
        if route.also_matched:
            others = ", ".join(f"{t.namespace}/{t.name}" for t in route.also_matched)
            message = f"{message} (ambiguous: also matched {others})"
        return status, message, target

    def publish(self, request):
        status, message, _ = self.call(self.stub.ScaleAndWait, request)
        return status, message

    def call(self, method, request):
        """Calls ScaleAndWait or ScaleJob within the deadline, retrying while the service is
        unavailable; returns (HTTP status, message, result or None)."""
        deadline = time.monotonic() + self.deadline
        delay = 0.2
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 503, "batch-scaler unavailable; let GitHub redeliver", None
            try:
                result = method(request, timeout=left)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
                    delay = min(delay * 2, 2.0)
                    continue
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return 503, "not applied in time; queued, and a redelivery is harmless", None
                if e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                    return 422, f"{e.code().name}: {e.details()}", None
                return 503, f"{e.code().name}: {e.details()}", None
            if result.duplicate:
                return 200, "duplicate delivery: already applied", result
            if not result.HasField("batch"):
                return 200, "nothing to apply", result
            outcome = self.pb.Outcome.Name(result.batch.outcome)
            if outcome in ("OUTCOME_APPLIED", "OUTCOME_DRY_RUN"):
                return 200, outcome, result
            return 422, f"{outcome}: {result.batch.error}", result


def make_handler(frontend: Frontend):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status: int, message: str):
            body = (json.dumps({"status": status, "message": message}) + "\n").encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if status != 204:
                self.wfile.write(body)

        def do_GET(self):
            if self.path == "/healthz":
                return self.reply(200, "ok")
            self.reply(404, "not found")

        def do_POST(self):
            if self.path != "/webhook":
                return self.reply(404, "not found")
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            delivery = self.headers.get("x-github-delivery", "")
            event = self.headers.get("x-github-event", "")
            job, hra = "", ""
            if not frontend.verify(body, self.headers.get("x-hub-signature-256", "")):
                status, message = 401, "missing or bad X-Hub-Signature-256"
            else:
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = None
                if isinstance(payload, dict):
                    job = str((payload.get("workflow_job") or {}).get("id", ""))
                    status, message, hra = frontend.handle(event, delivery, payload)
                else:
                    status, message = 400, "body is not a JSON object"
            log.info(json.dumps({"delivery": delivery, "event": event, "job_id": job, "hra": hra,
                                 "status": status, "outcome": message}))
            self.reply(status, message)

        def log_message(self, *args):
            pass

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0 picks one)")
    ap.add_argument("--target", default="127.0.0.1:50051", help="batch-scaler HOST:PORT")
    ap.add_argument("--routes", help="optional routes YAML file: route here instead of server-side")
    ap.add_argument("--default-duration", default="", help="reservation life to ask for (default: the "
                    "route's, else the HRA trigger's, else the service's)")
    ap.add_argument("--deadline", type=float, default=8.0,
                    help="seconds to wait for the HRA write; keep it under GitHub's 10 s")
    ap.add_argument("--proto-dir", default=str(HERE.parent.parent / "proto"))
    ap.add_argument("--insecure-no-signature", action="store_true",
                    help="accept unsigned webhooks (testing only)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not os.environ.get("GITHUB_WEBHOOK_SECRET") and not args.insecure_no_signature:
        sys.exit("GITHUB_WEBHOOK_SECRET is not set (use --insecure-no-signature to run without one)")
    pb, rpc = load_stubs(Path(args.proto_dir))
    frontend = Frontend(args, pb, rpc)
    host, port = args.listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), make_handler(frontend))
    server.daemon_threads = True
    log.info("listening on %s:%d", *server.server_address[:2])
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
