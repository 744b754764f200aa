"""Traces across processes: posts a signed `queued` webhook to the reference frontend (with
OTEL_EXPORTER_OTLP_ENDPOINT set) and checks, in the spans the OTLP receiver wrote, that the
frontend's delivery span is the parent of batch-scaler's spans for that job, that the batch
which applied it links to the job's enqueue span, and that batch-scaler's JSON log line of
that batch carries the batch's trace id. Prints one `PASS name` / `FAIL name: why` line per
check."""
import argparse
import json
import time
import uuid

from frontend_check import post


def load(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frontend", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--spans", required=True, help="JSON lines written by testkit's otlp-receiver")
    ap.add_argument("--log", required=True, help="batch-scaler's --log-format json output")
    a = ap.parse_args()
    delivery = f"d-traced-{uuid.uuid4()}"
    status, body = post(a.frontend, a.secret, "queued", delivery)
    print(("PASS" if status == 200 else "FAIL") + f" traces: the traced delivery is applied: {status} {body}")

    found = {}
    deadline = time.time() + 20
    while time.time() < deadline:
        spans = load(a.spans)
        delivery_span = next((s for s in spans if s["service"] == "webhook-frontend"
                              and s["attributes"].get("github.delivery") == delivery), None)
        if delivery_span:
            trace = delivery_span["trace_id"]
            ours = [s for s in spans if s["service"] == "batch-scaler" and s["trace_id"] == trace]
            child = next((s for s in ours if s["parent_span_id"] == delivery_span["span_id"]), None)
            enqueue = next((s for s in ours if s["name"] == "enqueue"
                            and s["attributes"].get("batch_scaler.event_id") == delivery), None)
            batch = enqueue and next((s for s in spans if s["name"] == "batch"
                                      and [trace, enqueue["span_id"]] in s["links"]), None)
            found = {"delivery": delivery_span, "child": child, "enqueue": enqueue, "batch": batch}
            if child and enqueue and batch:
                break
        time.sleep(0.2)

    def check(name, ok, why=""):
        print(("PASS" if ok else "FAIL") + f" traces: {name}" + ("" if ok else f": {why}"))

    check("the frontend exports a span per delivery (guid, event, action, job id)",
          found.get("delivery") is not None
          and found["delivery"]["attributes"].get("github.action") == "queued"
          and found["delivery"]["attributes"].get("github.workflow_job.id", "") != "",
          f"no frontend span for {delivery} in {a.spans}")
    check("batch-scaler's span for the job is a child of the frontend's delivery span",
          found.get("child") is not None, json.dumps(found.get("delivery")))
    check("the job's enqueue span is in the delivery's trace, with the delivery as event id",
          found.get("enqueue") is not None, "no enqueue span in the delivery's trace")
    check("the batch that applied the job links to its enqueue span",
          found.get("batch") is not None, "no batch span linking to it")
    batch = found.get("batch") or {}
    logged = False
    for _ in range(50):
        with open(a.log) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("batch_id") == batch.get("attributes", {}).get("batch_scaler.batch_id") \
                        and entry.get("trace_id") == batch.get("trace_id"):
                    logged = True
        if logged:
            break
        time.sleep(0.1)
    check("the batch's JSON log line carries its trace_id and span_id", logged,
          "no log line with the batch's id and trace id")


if __name__ == "__main__":
    main()
