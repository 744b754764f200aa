//! Token roles: every RPC under each role (`read`, `produce`, `peer`, and a bare token that
//! has all three), a refusal naming the role the call needs.

mod common;

use batch_scaler::{
    api::{
        auth::TokenAuth,
        pb::{self, batch_scaler_client::BatchScalerClient},
        transport::GrpcOptions,
    },
    config::Settings,
    store::MemoryStore,
};
use common::*;
use std::time::Duration;
use tonic::{Code, Request, transport::Channel};

const METHODS: [&str; 11] = [
    "WatchBatches",
    "GetTarget",
    "ListTargets",
    "RouteJob",
    "GetStats",
    "Publish",
    "Scale",
    "ScaleAndWait",
    "ScaleJob",
    "ScaleJobs",
    "Forward",
];

fn with<T>(token: &str, message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// The status code of calling `method` with `token` (`Ok` if the call was taken).
async fn call(client: &mut BatchScalerClient<Channel>, token: &str, method: &str) -> Code {
    let target = pb::TargetRef {
        namespace: "ci".into(),
        name: "a".into(),
    };
    let job = queued_job("octo-org/web", &["self-hosted"], "77");
    let result = match method {
        "WatchBatches" => client
            .watch_batches(with(token, pb::WatchBatchesRequest::default()))
            .await
            .map(drop),
        "GetTarget" => client.get_target(with(token, target)).await.map(drop),
        "ListTargets" => client
            .list_targets(with(token, pb::ListTargetsRequest::default()))
            .await
            .map(drop),
        "RouteJob" => client.route_job(with(token, job)).await.map(drop),
        "GetStats" => client
            .get_stats(with(token, pb::GetStatsRequest {}))
            .await
            .map(drop),
        "Publish" => client
            .publish(with(token, tokio_stream::iter(vec![ev("ci", "a", 1)])))
            .await
            .map(drop),
        "Scale" => client.scale(with(token, ev("ci", "a", 1))).await.map(drop),
        "ScaleAndWait" => client
            .scale_and_wait(with(token, ev("ci", "a", 1)))
            .await
            .map(drop),
        "ScaleJob" => client.scale_job(with(token, job)).await.map(drop),
        "ScaleJobs" => client
            .scale_jobs(with(token, tokio_stream::iter(vec![job])))
            .await
            .map(drop),
        "Forward" => client
            .forward(with(
                token,
                tokio_stream::iter(vec![pb::ForwardedEvent {
                    seq: 1,
                    event: Some(ev("ci", "a", 1)),
                    ..Default::default()
                }]),
            ))
            .await
            .map(drop),
        other => panic!("{other}"),
    };
    result.map_or_else(|s| s.code(), |()| Code::Ok)
}

#[tokio::test]
async fn every_rpc_under_each_role() {
    let settings = Settings {
        grpc: GrpcOptions {
            auth: TokenAuth::parse(
                "# the dashboard\ndash read\n# a frontend\nhook produce\nreplica peer\nold\n",
            )
            .unwrap(),
            ..test_settings(Duration::from_millis(100)).grpc
        },
        ..test_settings(Duration::from_millis(100))
    };
    let store = MemoryStore::with_objects([hra_object("ci", "a", None)]).unwrap();
    let (server, _store) = TestServer::with_store(store, settings).await;
    let mut client = server.client().await;
    let reads = &METHODS[..5];
    let produces = &METHODS[5..10];
    for method in METHODS {
        let may = |token: &str| match token {
            "dash" => reads.contains(&method),
            "hook" => reads.contains(&method) || produces.contains(&method),
            "replica" => method == "Forward",
            _ => true,
        };
        for token in ["dash", "hook", "replica", "old"] {
            let code = call(&mut client, token, method).await;
            if may(token) {
                assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{token} may call {method}: {code:?}"
                );
            } else {
                assert_eq!(code, Code::PermissionDenied, "{token} calling {method}");
            }
        }
        assert_eq!(
            call(&mut client, "stolen", method).await,
            Code::Unauthenticated
        );
    }
    // The refusal names the role.
    let refused = client
        .scale(with("dash", ev("ci", "a", 1)))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("needs the role `produce`"),
        "{}",
        refused.message()
    );
    let refused = client
        .forward(with("hook", tokio_stream::iter(Vec::new())))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("`peer`"),
        "{}",
        refused.message()
    );
}
