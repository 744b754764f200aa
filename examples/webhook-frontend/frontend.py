#!/usr/bin/env python3
"""GitHub workflow_job webhooks -> batch-scaler.

Verifies the webhook signature and forwards each workflow job with ScaleJob (wait=true): the
service routes it to its HorizontalRunnerAutoscaler exactly as actions-runner-controller's
webhook server does (from the HRAs, RunnerDeployments and RunnerSets in the cluster), so
GitHub's delivery succeeds (200) only once the HRA is written. The job id and the delivery id
travel with the event, which makes GitHub's redeliveries harmless.

    GITHUB_WEBHOOK_SECRET=... python frontend.py --listen 0.0.0.0:8080 --target batch-scaler:50051

One asyncio process: an aiohttp server with a deep listen backlog, so a matrix burst of
thousands of deliveries is queued by the kernel instead of refused, and a few long-lived gRPC
connections (grpc.aio) carrying every waiting call at once. Each pending delivery holds only
its job's fields; past --max-in-flight deliveries it answers 503 at once.

With --record FILE it also writes each signed workflow_job delivery as one JSON line,
{"delivered_at", "guid", "payload"}, the trace `batch-scaler replay` reads; the file is
rotated (FILE.1, FILE.2, ...) past --record-max-bytes.

With --routes FILE it routes by its own table instead and publishes with ScaleAndWait (an
override for clusters whose runner objects routing cannot read).

With OTEL_EXPORTER_OTLP_ENDPOINT set (and the OpenTelemetry SDK installed), each delivery is a
span (guid, event, action, job id) exported over OTLP/gRPC, and its W3C traceparent travels
with the job, so batch-scaler's spans for that job join the delivery's trace.
"""
import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

try:  # optional: parses a payload several times faster than the standard library
    from orjson import loads as json_loads, dumps as json_dumps
except ImportError:
    json_loads = json.loads

    def json_dumps(value) -> bytes:
        return json.dumps(value).encode()

HERE = Path(__file__).resolve().parent

# Set by setup_tracing() when OTEL_EXPORTER_OTLP_ENDPOINT is set.
TRACER = None


def setup_tracing():
    """Exports a span per delivery over OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set;
    returns the provider to shut down (None when off)."""
    global TRACER
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or "webhook-frontend"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    TRACER = trace.get_tracer("webhook-frontend")
    return provider


def current_traceparent() -> str:
    """The W3C traceparent of the current span ("" when tracing is off)."""
    if TRACER is None:
        return ""
    from opentelemetry.propagate import inject

    carrier = {}
    inject(carrier)
    return carrier.get("traceparent", "")
# gRPC status codes by number, as ScaleJobs answers carry them.
CODES = {c.value[0]: c for c in grpc.StatusCode}

# Answer latency buckets, in seconds: GitHub gives up after 10.
ANSWER_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15)


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


class Metrics:
    """The frontend's own Prometheus figures, served at /metrics."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.deliveries = Counter("webhook_frontend_deliveries", "Deliveries answered, by HTTP status",
                                  ["code"], registry=self.registry)
        self.in_flight = Gauge("webhook_frontend_in_flight", "Deliveries received and not yet answered",
                               registry=self.registry)
        self.answer = Histogram("webhook_frontend_answer_seconds", "From a delivery's request to its answer",
                                buckets=ANSWER_BUCKETS, registry=self.registry)
        self.grpc_errors = Counter("webhook_frontend_grpc_errors", "batch-scaler calls that failed, by gRPC code",
                                   ["code"], registry=self.registry)

    def answered(self, status: int, seconds: float):
        self.deliveries.labels(str(status)).inc()
        self.answer.observe(seconds)


class StreamBroken(Exception):
    """The ScaleJobs stream a job was sent on ended before the job's answer came."""


class JobStream:
    """One ScaleJobs call kept open on one channel: jobs are queued to it and their answers,
    which come in completion order, are matched back by (job_id, event_id). A pending job
    costs a future and its small request here, not a gRPC call of its own."""

    def __init__(self, stub, metadata):
        self.stub = stub
        self.metadata = metadata
        self.outbox = None  # asyncio.Queue of the open call, None while reconnecting
        self.pending = {}   # (job_id, event_id) -> [Future], oldest first
        self.task = None

    def start(self):
        self.task = asyncio.create_task(self.run())

    async def stop(self):
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    @staticmethod
    async def requests(outbox: asyncio.Queue):
        while True:
            yield await outbox.get()

    async def run(self):
        """Keeps one call open; when it ends (a restart of the service ends it with
        UNAVAILABLE once it has answered what it holds), jobs still unanswered are handed back
        to their callers to send again, which their event ids make harmless."""
        delay = 0.1
        while True:
            outbox = asyncio.Queue()
            call = self.stub.ScaleJobs(self.requests(outbox), metadata=self.metadata)
            self.outbox = outbox
            try:
                async for answer in call:
                    delay = 0.1
                    self.resolve(answer)
            except grpc.aio.AioRpcError:
                pass
            finally:
                self.outbox = None
                call.cancel()
                self.break_pending()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def resolve(self, answer):
        waiters = self.pending.get((answer.job_id, answer.event_id))
        while waiters:
            future = waiters.pop(0)
            if not future.done():
                future.set_result(answer)
                break
        if waiters == []:
            del self.pending[(answer.job_id, answer.event_id)]

    def break_pending(self):
        pending, self.pending = self.pending, {}
        for waiters in pending.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(StreamBroken())

    async def submit(self, job, timeout: float):
        """The job's answer, or TimeoutError after `timeout` seconds, or StreamBroken."""
        if self.outbox is None:
            raise StreamBroken()
        key = (job.job_id, job.event_id)
        future = asyncio.get_running_loop().create_future()
        waiters = self.pending.setdefault(key, [])
        waiters.append(future)
        self.outbox.put_nowait(job)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            waiters = self.pending.get(key)
            if waiters and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self.pending[key]


class Frontend:
    def __init__(self, args, pb, rpc):
        self.pb = pb
        self.rpc = rpc
        self.args = args
        self.secret = os.environ.get("GITHUB_WEBHOOK_SECRET", "").encode()
        self.routes = load_routes(Path(args.routes)) if args.routes else None
        self.deadline = args.deadline
        self.unavailable_retry = args.unavailable_retry
        self.default_duration = parse_duration(args.default_duration) if args.default_duration else 0
        self.max_in_flight = args.max_in_flight
        self.in_flight = 0
        self.metrics = Metrics()
        self.metadata = ()
        if args.token_file:
            token = Path(args.token_file).read_text().strip()
            self.metadata = (("authorization", f"Bearer {token}"),)
        self.channels = []
        self.stubs = None
        self.streams = None
        self.recorder = Recorder(args.record, args.record_max_bytes, args.record_keep) if args.record else None

    async def connect(self):
        """Opens --grpc-connections channels (each its own HTTP/2 connection, so calls spread
        over them); gRPC reconnects each by itself."""
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.keepalive_time_ms", 30_000)]
        for _ in range(max(1, self.args.grpc_connections)):
            if self.args.tls_ca:
                creds = grpc.ssl_channel_credentials(Path(self.args.tls_ca).read_bytes())
                channel = grpc.aio.secure_channel(self.args.target, creds, options=options)
            else:
                channel = grpc.aio.insecure_channel(self.args.target, options=options)
            self.channels.append(channel)
        stubs = [self.rpc.BatchScalerStub(c) for c in self.channels]
        self.stubs = itertools.cycle(stubs)
        if not self.args.unary:
            streams = [JobStream(stub, self.metadata) for stub in stubs]
            for stream in streams:
                stream.start()
            self.streams = itertools.cycle(streams)
            self.all_streams = streams

    async def close(self):
        for stream in getattr(self, "all_streams", []):
            await stream.stop()
        for channel in self.channels:
            await channel.close()

    def verify(self, body: bytes, signature: str) -> bool:
        if not self.secret:
            return True
        if not signature.startswith("sha256="):
            return False
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    @property
    def forward_starts(self) -> bool:
        return self.args.forward_starts

    def prepare(self, event: str, delivery: str, payload: dict):
        """What to do with one verified webhook, decided from its payload (which is not kept):
        either an answer now, (status, message), or a call to make, (method, request, None)."""
        if event == "ping":
            return 200, "pong"
        if event != "workflow_job":
            return 204, f"ignored event {event!r}"
        if self.routes is None:
            return "ScaleJob", self.workflow_job(delivery, payload), None
        action = payload.get("action")
        job = payload.get("workflow_job") or {}
        started_at = None
        if action == "queued":
            amount = 1
        elif action == "in_progress" and job.get("id"):
            # Recorded by the HRA's job ledger; with --forward-starts also the job's start (for
            # batch-scaler's --reservation-clock started: the reservation lives the duration
            # from then).
            amount = 0
            if self.forward_starts:
                started_at = job.get("started_at") or True
        elif action == "completed":
            conclusion = job.get("conclusion")
            if conclusion == "skipped":
                return 204, "skipped job: no runner was used"
            if conclusion == "success" and not job.get("runner_id"):
                return 204, "successful job without a runner: nothing to release"
            amount = -1
        else:
            return 204, f"ignored action {action!r}"
        repo = payload.get("repository") or {}
        repository = repo.get("full_name", "")
        organization = (payload.get("organization") or {}).get("login") or (repo.get("owner") or {}).get("login", "")
        enterprise = (payload.get("enterprise") or {}).get("slug", "")
        labels = job.get("labels") or []
        matched = [r for r in self.routes if r.matches(repository, organization, enterprise, labels)]
        if not matched:
            return 202, f"no route for {repository} with labels {labels}"
        if len(matched) > 1:
            return 409, "ambiguous: " + ", ".join(r.hra for r in matched)
        route = matched[0]
        request = self.pb.ScaleEvent(namespace=route.hra_namespace, name=route.hra_name, amount=amount,
                                     job_id=str(job.get("id", "")), event_id=delivery)
        if started_at and not set_time(request.started_at, started_at):
            request.started_at.GetCurrentTime()
        if job.get("id"):
            times = request.job_times
            for field in ("created_at", "started_at", "completed_at"):
                set_time(getattr(times, field), job.get(field))
            times.runner_name = job.get("runner_name") or ""
            times.ran = job.get("runner_id") is not None
        duration = route.duration_s or self.default_duration
        if duration:
            request.duration.seconds = duration
        return "ScaleAndWait", request, route

    async def forward(self, method: str, request, route, deadline: float):
        """Makes the call `prepare` decided on; returns (HTTP status, message, HRA)."""
        status, message, result = await self.call(method, request, deadline)
        if method == "ScaleAndWait":
            return status, message, route.hra
        if result is None:
            return status, message, ""
        route = result.route
        if not route.HasField("target") or (route.amount == 0 and not route.starts):
            return (204 if route.amount == 0 else 202), route.reason, ""
        if route.also_matched:
            others = ", ".join(f"{t.namespace}/{t.name}" for t in route.also_matched)
            message = f"{message} (ambiguous: also matched {others})"
        return status, message, f"{route.target.namespace}/{route.target.name}"

    def workflow_job(self, delivery: str, payload: dict):
        """The fields routing needs; the rest of the payload is not kept."""
        job = payload.get("workflow_job") or {}
        repo = payload.get("repository") or {}
        request = self.pb.WorkflowJob(
            action=payload.get("action") or "", repository=repo.get("full_name", ""),
            owner_type=(repo.get("owner") or {}).get("type", ""),
            enterprise=(payload.get("enterprise") or {}).get("slug", ""),
            labels=job.get("labels") or [], conclusion=job.get("conclusion") or "",
            has_runner=job.get("runner_id") is not None, job_id=str(job.get("id") or ""),
            event_id=delivery, wait=True, traceparent=current_traceparent(),
            runner_name=job.get("runner_name") or "")
        for field in ("created_at", "started_at", "completed_at"):
            set_time(getattr(request, field), job.get(field))
        if self.default_duration:
            request.duration.seconds = self.default_duration
        return request

    async def invoke(self, method: str, request, left: float):
        """One try: (gRPC status code, details, result). ScaleJob goes on a ScaleJobs stream
        unless --unary; ScaleAndWait is a call of its own."""
        if method == "ScaleJob" and self.streams is not None:
            # The service answers DEADLINE_EXCEEDED just before we would give up ourselves.
            request.wait_timeout.FromMilliseconds(max(int((left - 0.1) * 1000), 1))
            try:
                answer = await next(self.streams).submit(request, left)
            except StreamBroken:
                return grpc.StatusCode.UNAVAILABLE, "the ScaleJobs stream ended; sending again", None
            except TimeoutError:
                return grpc.StatusCode.DEADLINE_EXCEEDED, "no answer in time", None
            if answer.code:
                return CODES.get(answer.code, grpc.StatusCode.UNKNOWN), answer.message, None
            return grpc.StatusCode.OK, "", answer
        metadata = self.metadata
        traceparent = current_traceparent()
        if traceparent:
            metadata = metadata + (("traceparent", traceparent),)
        try:
            result = await getattr(next(self.stubs), method)(request, timeout=left, metadata=metadata)
        except grpc.aio.AioRpcError as e:
            return e.code(), e.details(), None
        return grpc.StatusCode.OK, "", result

    async def call(self, method: str, request, deadline: float):
        """Calls ScaleAndWait or ScaleJob before `deadline` (loop time), retrying for at most
        --unavailable-retry while the service is unavailable; returns (HTTP status, message,
        result or None)."""
        loop = asyncio.get_running_loop()
        give_up_unavailable = min(deadline, loop.time() + self.unavailable_retry)
        delay = 0.1
        while True:
            left = deadline - loop.time()
            if left <= 0.05:
                return 503, "not applied in time; queued, and a redelivery is harmless", None
            code, details, result = await self.invoke(method, request, left)
            if code != grpc.StatusCode.OK:
                self.metrics.grpc_errors.labels(code.name).inc()
                if code == grpc.StatusCode.UNAVAILABLE and loop.time() + delay < give_up_unavailable:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return 503, "not applied in time; queued, and a redelivery is harmless", None
                if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                    return 422, f"{code.name}: {details}", None
                return 503, f"{code.name}: {details}", None
            if result.duplicate:
                return 200, "duplicate delivery: already applied", result
            if not result.HasField("batch"):
                return 200, "nothing to apply", result
            outcome = self.pb.Outcome.Name(result.batch.outcome)
            if outcome in ("OUTCOME_APPLIED", "OUTCOME_DRY_RUN"):
                return 200, outcome, result
            return 422, f"{outcome}: {result.batch.error}", result

    async def webhook(self, request: web.Request) -> web.Response:
        if TRACER is None:
            return await self.handle(request)
        from opentelemetry.trace import SpanKind

        delivery = request.headers.get("x-github-delivery", "")
        event = request.headers.get("x-github-event", "")
        with TRACER.start_as_current_span("webhook delivery", kind=SpanKind.SERVER, attributes={
                "github.delivery": delivery, "github.event": event}) as span:
            response = await self.handle(request)
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.deadline
        delivery = request.headers.get("x-github-delivery", "")
        event = request.headers.get("x-github-event", "")
        job, hra = "", ""
        if self.in_flight >= self.max_in_flight:
            status, message = 503, f"over {self.max_in_flight} deliveries in flight (--max-in-flight); let GitHub redeliver"
            return self.answer(status, message, started, delivery, event, job, hra)
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            body = await request.read()
            if not self.verify(body, request.headers.get("x-hub-signature-256", "")):
                status, message = 401, "missing or bad X-Hub-Signature-256"
            else:
                try:
                    payload = json_loads(body)
                except ValueError:
                    payload = None
                if isinstance(payload, dict) and self.recorder is not None and event == "workflow_job":
                    self.recorder.write(delivery, body, payload)
                del body
                if isinstance(payload, dict):
                    job = str((payload.get("workflow_job") or {}).get("id", ""))
                    if TRACER is not None:
                        from opentelemetry import trace

                        span = trace.get_current_span()
                        span.set_attribute("github.action", str(payload.get("action") or ""))
                        span.set_attribute("github.workflow_job.id", job)
                    decided = self.prepare(event, delivery, payload)
                    # Only the request goes on waiting: the payload is ~8 KiB of JSON.
                    del payload
                    if isinstance(decided[0], int):
                        status, message = decided
                    else:
                        status, message, hra = await self.forward(*decided, deadline)
                else:
                    status, message = 400, "body is not a JSON object"
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
        return self.answer(status, message, started, delivery, event, job, hra)

    def answer(self, status, message, started, delivery, event, job, hra) -> web.Response:
        self.metrics.answered(status, asyncio.get_running_loop().time() - started)
        # One JSON line per delivery, written directly: the logging module costs more than
        # the rest of an answer during a burst.
        sys.stdout.buffer.write(json_dumps({"delivery": delivery, "event": event, "job_id": job, "hra": hra,
                                            "status": status, "outcome": message}) + b"\n")
        if status == 204:
            return web.Response(status=204)
        body = json_dumps({"status": status, "message": message}) + b"\n"
        return web.Response(body=body, status=status, content_type="application/json")

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def prometheus(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"content-type": CONTENT_TYPE_LATEST})


class Recorder:
    """Appends one JSON line per workflow_job delivery to a size-rotated file: FILE, then
    FILE.1 (newest) ... FILE.<keep> (oldest)."""

    def __init__(self, path: str, max_bytes: int, keep: int):
        self.path, self.max_bytes, self.keep = Path(path), max_bytes, keep
        self.file = open(self.path, "ab")
        self.size = self.file.tell()

    def write(self, delivery: str, body: bytes, payload: dict):
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        # The payload as received, unless it spans lines (then as parsed).
        raw = body.strip() if b"\n" not in body.strip() else json_dumps(payload)
        line = b'{"delivered_at":"' + stamp.encode() + b'","guid":' + json_dumps(delivery) + b',"payload":' + raw + b"}\n"
        if self.size > 0 and self.size + len(line) > self.max_bytes:
            self.rotate()
        self.file.write(line)
        self.size += len(line)

    def rotate(self):
        self.file.close()
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.keep > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self.file = open(self.path, "ab")
        self.size = 0

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()


def set_time(field, text) -> bool:
    """Sets a protobuf Timestamp from GitHub's RFC 3339 text; False (left unset) if there is
    none or it does not parse (the service then names nothing: the field is optional)."""
    if not text:
        return False
    try:
        field.FromJsonString(text)
    except ValueError:
        field.Clear()
        return False
    return True


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0 picks one)")
    ap.add_argument("--target", default="127.0.0.1:50051", help="batch-scaler HOST:PORT")
    ap.add_argument("--routes", help="optional routes YAML file: route here instead of server-side")
    ap.add_argument("--default-duration", default="", help="reservation life to ask for (default: the "
                    "route's, else the HRA trigger's, else the service's)")
    ap.add_argument("--deadline", type=float, default=8.0,
                    help="seconds from a delivery's arrival to its answer; keep it under GitHub's 10 s")
    ap.add_argument("--unavailable-retry", type=float, default=3.0,
                    help="seconds to keep retrying while batch-scaler answers UNAVAILABLE before answering 503")
    ap.add_argument("--backlog", type=int, default=4096,
                    help="listen backlog: connections the kernel queues during a burst (capped by net.core.somaxconn)")
    ap.add_argument("--grpc-connections", type=int, default=4, help="HTTP/2 connections to batch-scaler, "
                    "each carrying one ScaleJobs stream")
    ap.add_argument("--unary", action="store_true",
                    help="one ScaleJob call per delivery instead of ScaleJobs streams (more memory and CPU per delivery)")
    ap.add_argument("--max-in-flight", type=int, default=20000,
                    help="deliveries handled at once; past it, 503 at once (bounds memory)")
    ap.add_argument("--max-body-bytes", type=int, default=1 << 20,
                    help="largest webhook body read (workflow_job payloads are about 8 KiB); larger: 413")
    ap.add_argument("--token-file", help="file holding a bearer token for batch-scaler's --auth-token-file")
    ap.add_argument("--tls-ca", help="PEM CA: connect to batch-scaler over TLS")
    ap.add_argument("--proto-dir", default=str(HERE.parent.parent / "proto"))
    ap.add_argument("--record", help="also append each workflow_job delivery to this trace file (JSON lines)")
    ap.add_argument("--record-max-bytes", type=int, default=256 << 20,
                    help="rotate the --record file past this size (default 256 MiB)")
    ap.add_argument("--record-keep", type=int, default=5, help="rotated --record files kept (default 5)")
    ap.add_argument("--forward-starts", action="store_true",
                    help="with --routes: send each in_progress as its job's start too (for batch-scaler's "
                    "--reservation-clock started); without it an in_progress is only recorded by the "
                    "job ledger. Without --routes the service decides")
    ap.add_argument("--insecure-no-signature", action="store_true",
                    help="accept unsigned webhooks (testing only)")
    return ap.parse_args()


async def flush_every(seconds: float, recorder):
    """Delivery lines (and the recording) are buffered during a burst and flushed once a
    second."""
    while True:
        await asyncio.sleep(seconds)
        sys.stdout.flush()
        if recorder is not None:
            recorder.flush()


async def serve(args, pb, rpc):
    tracing = setup_tracing()
    frontend = Frontend(args, pb, rpc)
    await frontend.connect()
    app = web.Application(client_max_size=args.max_body_bytes)
    app.router.add_post("/webhook", frontend.webhook)
    app.router.add_get("/healthz", frontend.healthz)
    app.router.add_get("/metrics", frontend.prometheus)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=args.deadline + 1)
    await runner.setup()
    host, port = args.listen.rsplit(":", 1)
    site = web.TCPSite(runner, host, int(port), backlog=args.backlog, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    flusher = asyncio.create_task(flush_every(1.0, frontend.recorder))
    await stop.wait()
    flusher.cancel()
    # Stop accepting; deliveries in flight get their answers (at most --deadline).
    await runner.cleanup()
    await frontend.close()
    if frontend.recorder is not None:
        frontend.recorder.close()
    if tracing is not None:
        tracing.shutdown()
    sys.stdout.flush()


def main():
    args = parse_args()
    if not os.environ.get("GITHUB_WEBHOOK_SECRET") and not args.insecure_no_signature:
        sys.exit("GITHUB_WEBHOOK_SECRET is not set (use --insecure-no-signature to run without one)")
    pb, rpc = load_stubs(Path(args.proto_dir))
    try:
        import uvloop  # optional: a faster event loop
    except ImportError:
        asyncio.run(serve(args, pb, rpc))
    else:
        uvloop.run(serve(args, pb, rpc))


if __name__ == "__main__":
    main()
