//! Traces end to end on the Kubernetes backend (the test API server, or an existing cluster):
//! a `ScaleJob` sent with a `traceparent` yields, in that trace, the RPC, routing and enqueue
//! spans; the batch's own trace links to it, and its apply attempt has the PATCH as a child
//! with its status; a batch of events from three traces links all three; jobs on one
//! `ScaleJobs` stream each join their own trace; a recovered delivery starts a trace of its
//! own. Spans go to an OTLP receiver in `testkit`. One test: the tracer provider is process-wide.

mod common;

use batch_scaler::{
    api::pb,
    ops::{
        telemetry::{self, LogFormat},
        traces::{TraceSettings, Traces},
    },
    store::kubernetes::KubeStore,
};
use batch_scaler_testkit::{
    cluster::TestCluster,
    github::{FakeGithub, workflow_job_payload},
    otlp::{OtlpReceiver, ReceivedSpan},
};
use common::*;
use serde_json::json;
use std::{sync::Arc, time::Duration};

fn traced<T>(message: T, trace_id: &str, span_id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("00-{trace_id}-{span_id}-01");
    request
        .metadata_mut()
        .insert("traceparent", value.parse().unwrap());
    request
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_a_jobs_trace_reaches_the_write_that_applied_it() {
    let receiver = OtlpReceiver::start().await;
    let (traces, tracer) = Traces::start(&TraceSettings {
        endpoint: receiver.endpoint(),
    })
    .unwrap();
    telemetry::init(LogFormat::Text, Some(tracer));

    let c = TestCluster::start().await;
    let org = c.namespace.clone();
    c.create(hra_object(&c.namespace, "app", None)).await;
    c.create(json!({"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment",
        "metadata": {"name": "app"}, "spec": {"template": {"spec": {"repository": format!("{org}/app")}}}}))
        .await;
    let store = KubeStore::new(c.client(), Duration::from_secs(10))
        .with_watch_cache(std::slice::from_ref(&c.namespace));
    // Drift repair on: one failed delivery to recover, in a trace of its own.
    let gh = FakeGithub::start().await;
    let hook_path = format!("/orgs/{org}/hooks/5/deliveries");
    let mut settings = test_settings(Duration::from_millis(200));
    settings.github = Some(gh.config(&[&format!("org/{org}/5")], Duration::from_secs(3600)));
    let server = TestServer::start(Arc::new(store), settings).await;
    let mut client = server.client().await;

    // One job, in the frontend's trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let mut job = queued_job(&format!("{org}/app"), &["self-hosted"], "7001");
    job.event_id = "d-7001".into();
    job.wait = true;
    let answer = eventually_ok(&mut client, traced(job, trace, parent)).await;
    assert_eq!(answer.batch.unwrap().added, 1);

    let spans = || receiver.spans();
    eventually(
        Duration::from_secs(15),
        "the job's spans and its batch's spans exported",
        || async {
            let all = spans();
            let enqueue = all
                .iter()
                .find(|s| s.trace_id == trace && s.name == "enqueue");
            let linked = enqueue.is_some_and(|e| {
                all.iter().any(|s| {
                    s.name == "batch" && s.links.contains(&(trace.to_owned(), e.span_id.clone()))
                })
            });
            linked
                && all
                    .iter()
                    .any(|s| s.name.starts_with("PATCH") || s.attr("http.method") == Some("PATCH"))
        },
    )
    .await;
    let all = spans();
    let job_spans: Vec<ReceivedSpan> = all
        .iter()
        .filter(|s| s.trace_id == trace)
        .cloned()
        .collect();
    // The call that was answered (earlier tries met routing still listing) holds the enqueue.
    let enqueue = find(&job_spans, "enqueue").expect("the enqueue span");
    let rpc = job_spans
        .iter()
        .find(|s| s.span_id == enqueue.parent_span_id)
        .expect("the RPC span");
    assert_eq!(rpc.name, "batchscaler.v1.BatchScaler/ScaleJob");
    assert_eq!(rpc.parent_span_id, parent, "a child of the caller's span");
    assert_eq!(rpc.attr("rpc.system"), Some("grpc"));
    assert_eq!(rpc.attr("rpc.method"), Some("ScaleJob"));
    assert_eq!(rpc.attr("rpc.grpc.status_code"), Some("0"));
    assert_eq!(rpc.service, "batch-scaler");
    let route = job_spans
        .iter()
        .find(|s| s.name == "route" && s.parent_span_id == rpc.span_id)
        .expect("the routing span");
    assert_eq!(route.parent_span_id, rpc.span_id);
    assert_eq!(
        route.attr("batch_scaler.hra"),
        Some(format!("{org}/app").as_str())
    );
    assert_eq!(route.attr("batch_scaler.result"), Some("routed"));
    assert!(
        route
            .attr("batch_scaler.reason")
            .is_some_and(|r| r.contains("repository"))
    );
    assert_eq!(enqueue.attr("batch_scaler.event_id"), Some("d-7001"));
    assert_eq!(enqueue.attr("batch_scaler.job_id"), Some("7001"));
    assert_eq!(enqueue.attr("batch_scaler.duplicate"), Some("false"));
    assert_eq!(enqueue.attr("k8s.namespace.name"), Some(org.as_str()));
    let batch = all
        .iter()
        .find(|s| {
            s.name == "batch"
                && s.links
                    .contains(&(trace.to_owned(), enqueue.span_id.clone()))
        })
        .unwrap();
    assert_eq!(batch.attr("batch_scaler.outcome"), Some("applied"));
    assert_eq!(
        (
            batch.attr("batch_scaler.added"),
            batch.attr("batch_scaler.after")
        ),
        (Some("1"), Some("1"))
    );
    assert!(
        batch
            .attr("batch_scaler.batch_id")
            .is_some_and(|id| id.len() == 32)
    );
    let apply = all
        .iter()
        .find(|s| s.name == "apply" && s.parent_span_id == batch.span_id)
        .expect("the apply attempt");
    assert_eq!(apply.attr("batch_scaler.attempt"), Some("1"));
    let patch = all
        .iter()
        .find(|s| s.parent_span_id == apply.span_id && s.attr("http.method") == Some("PATCH"))
        .expect("the PATCH, a child of the attempt");
    assert_eq!(patch.attr("http.status_code"), Some("200"));
    println!("one job's trace:\n{}", render(&all, trace, batch));
    // The write's latency bucket names the batch's trace as its exemplar.
    let text = scrape(server.http_addr).await;
    let exemplar = format!("# {{trace_id=\"{}\"}}", batch.trace_id);
    assert!(
        text.lines().any(
            |l| l.starts_with("batch_scaler_write_duration_seconds_bucket")
                && l.contains(&exemplar)
        ),
        "no exemplar {exemplar} in\n{text}"
    );

    // Three producers' events in one window: the batch links all three traces.
    let traces_ids = [
        "11111111111111111111111111111111",
        "22222222222222222222222222222222",
        "33333333333333333333333333333333",
    ];
    let mut calls = Vec::new();
    for (i, t) in traces_ids.iter().enumerate() {
        let mut client = client.clone();
        let event = job_ev(
            &c.namespace,
            "app",
            1,
            &format!("80{i}"),
            &format!("d-80{i}"),
        );
        let request = traced(event, t, "00f067aa0ba902b7");
        calls.push(tokio::spawn(
            async move { client.scale(request).await.unwrap() },
        ));
    }
    for call in calls {
        call.await.unwrap();
    }
    eventually(
        Duration::from_secs(15),
        "one batch linking all three traces",
        || async {
            spans().iter().any(|s| {
                s.name == "batch"
                    && traces_ids
                        .iter()
                        .all(|t| s.links.iter().any(|(lt, _)| lt == t))
            })
        },
    )
    .await;
    // Two jobs on one ScaleJobs stream, each in its own delivery's trace.
    let deliveries = [
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    ];
    let jobs: Vec<pb::WorkflowJob> = deliveries
        .iter()
        .enumerate()
        .map(|(i, t)| pb::WorkflowJob {
            traceparent: format!("00-{t}-00f067aa0ba902b7-01"),
            ..queued_job(&format!("{org}/app"), &["self-hosted"], &format!("90{i}"))
        })
        .collect();
    let mut answers = client
        .scale_jobs(tokio_stream::iter(jobs))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        answers.message().await.unwrap().unwrap();
    }
    eventually(
        Duration::from_secs(15),
        "each job's enqueue span in its own trace",
        || async {
            let all = spans();
            deliveries.iter().enumerate().all(|(i, t)| {
                all.iter().any(|s| {
                    s.trace_id == *t
                        && s.name == "enqueue"
                        && s.attr("batch_scaler.job_id") == Some(&*format!("90{i}"))
                })
            })
        },
    )
    .await;
    // A delivery that failed: recovered in a trace of its own, from the recovery to the enqueue.
    let payload = workflow_job_payload("queued", 7100, &format!("{org}/app"), &["self-hosted"]);
    let (_, guid) = gh.deliver(&hook_path, "workflow_job", payload, 502);
    eventually(Duration::from_secs(15), "the recovery's trace", || async {
        let all = spans();
        all.iter().any(|r| {
            r.name == "recover_delivery"
                && r.attr("batch_scaler.delivery_guid") == Some(guid.as_str())
                && r.parent_span_id.is_empty()
                && all.iter().any(|e| {
                    e.trace_id == r.trace_id
                        && e.name == "enqueue"
                        && e.attr("batch_scaler.origin") == Some("recovered")
                })
        })
    })
    .await;
    traces.shutdown();
}

/// `ScaleJob`, once routing has listed (it answers UNAVAILABLE until then).
async fn eventually_ok(
    client: &mut batch_scaler::api::pb::batch_scaler_client::BatchScalerClient<
        tonic::transport::Channel,
    >,
    request: tonic::Request<pb::WorkflowJob>,
) -> pb::ScaleJobResult {
    let (metadata, _, job) = request.into_parts();
    for _ in 0..100 {
        let mut again = tonic::Request::new(job.clone());
        *again.metadata_mut() = metadata.clone();
        match client.scale_job(again).await {
            Ok(answer) => return answer.into_inner(),
            Err(e) if e.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("routing never became ready")
}

/// The job's trace, then the batch's, as indented text.
fn render(all: &[ReceivedSpan], trace: &str, batch: &ReceivedSpan) -> String {
    fn tree(all: &[ReceivedSpan], trace: &str, parent: &str, depth: usize, out: &mut String) {
        for s in all
            .iter()
            .filter(|s| s.trace_id == trace && s.parent_span_id == parent)
        {
            let mut attrs: Vec<String> = s
                .attributes
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("batch_scaler.")
                        || k.starts_with("http.")
                        || k.starts_with("rpc.method")
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            attrs.sort();
            let links = if s.links.is_empty() {
                String::new()
            } else {
                format!(" links={}", s.links.len())
            };
            out.push_str(&format!(
                "{}{} [{}]{links}\n",
                "  ".repeat(depth),
                s.name,
                attrs.join(" ")
            ));
            tree(all, trace, &s.span_id, depth + 1, out);
        }
    }
    let mut out = String::new();
    let roots: Vec<&str> = all
        .iter()
        .filter(|s| s.trace_id == trace && !all.iter().any(|p| p.span_id == s.parent_span_id))
        .map(|s| s.parent_span_id.as_str())
        .collect();
    if let Some(root) = roots.first() {
        tree(all, trace, root, 0, &mut out);
    }
    out.push_str("linked from:\n");
    tree(all, &batch.trace_id, "", 1, &mut out);
    out
}
