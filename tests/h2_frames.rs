//! HTTP/2 flow control against h2's flood protection, with a raw h2 client that sends each
//! message as its own DATA frame (as gRPC C-core does): a producer whose stream the service
//! stops reading is slowed by flow control, never cut; a flood of one-byte frames into such a
//! stream is still refused (GOAWAY ENHANCE_YOUR_CALM, counted); a million one-byte frames that
//! the service reads leave its memory flat while other connections are served. Alone in its own
//! test binary, so that no other test's allocations are counted.

mod common;

use batch_scaler::{api::pb, config::Settings, store::MemoryStore};
use batch_scaler_testkit::h2_raw::{connect, framed, grpc_call, send_frame};
use bytes::Bytes;
use common::*;
use std::{net::SocketAddr, time::Duration};

/// A job no HRA takes: answered at once, so unread answers soon stop the handler reading.
fn unrouted_job(i: usize) -> pb::WorkflowJob {
    pb::WorkflowJob {
        action: "queued".into(),
        repository: "octo-org/nowhere".into(),
        labels: vec!["self-hosted".into()],
        job_id: format!("{}", 9_000_000 + i),
        ..Default::default()
    }
}

async fn server(settings: Settings) -> TestServer {
    let store = MemoryStore::with_objects([hra_object("ci", "flood", None)]).unwrap();
    TestServer::with_store(store, settings).await.0
}

/// Opens a `ScaleJobs` stream whose answers are never read (so that the handler soon stops
/// reading: its answers wait) and sends jobs, each in its own 60-byte frame or, with
/// `one_byte`, cut into one-byte frames, until flow control stops them. Returns how many
/// frames went out and the error the connection ended with (`None`: it is still open).
async fn stall_a_stream(addr: SocketAddr, one_byte: bool) -> (usize, Option<h2::Error>) {
    let (send, conn) = connect(addr).await;
    let mut send = send.ready().await.unwrap();
    let (_answers, mut stream) = send
        .send_request(grpc_call(addr, "ScaleJobs"), false)
        .unwrap();
    let patience = Duration::from_secs(2);
    let mut sent = 0;
    let mut jobs = 0;
    'sending: loop {
        let job = framed(&unrouted_job(jobs));
        jobs += 1;
        let frames: Vec<Bytes> = if one_byte {
            (0..job.len()).map(|i| job.slice(i..i + 1)).collect()
        } else {
            vec![job]
        };
        for frame in frames {
            match send_frame(&mut stream, frame, patience).await {
                Ok(true) => sent += 1,
                // The window no longer grows, or the connection broke (its task says how).
                Ok(false) | Err(_) => break 'sending,
            }
        }
        assert!(jobs < 200_000, "flow control never stopped the producer");
    }
    // Give the server time to read what is on the wire before judging.
    let mut conn = conn;
    let ended = tokio::time::timeout(Duration::from_secs(2), &mut conn).await;
    match ended {
        Ok(result) => (
            sent,
            Some(result.unwrap().expect_err("closed with an error")),
        ),
        Err(_) => {
            // Still open: this client goes away now.
            conn.abort();
            (sent, None)
        }
    }
}

fn calm(e: &h2::Error) -> bool {
    e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_the_service_stops_reading_is_slowed_never_cut() {
    let server = server(test_settings(Duration::from_secs(60))).await;
    let (sent, error) = stall_a_stream(server.addr, false).await;
    assert!(
        error.is_none(),
        "the connection was cut after {sent} frames: {error:?}"
    );
    // 64 KiB of stream window: about a thousand 60-byte frames, then flow control.
    assert!(
        (500..5_000).contains(&sent),
        "{sent} frames before flow control"
    );
    let metrics = scrape(server.http_addr).await;
    assert_eq!(
        sample(
            &metrics,
            "batch_scaler_connections_closed_total{reason=\"goaway_enhance_your_calm\"}"
        ),
        0.0
    );
    eventually(
        Duration::from_secs(20),
        "the client's close counted",
        || async {
            let metrics = scrape(server.http_addr).await;
            sample(
                &metrics,
                "batch_scaler_connections_closed_total{reason=\"peer\"}",
            ) == 1.0
                && sample(&metrics, "batch_scaler_connections_open") == 0.0
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hypers_default_windows_the_same_producer_is_cut() {
    // The windows this service ran with before (hyper's 1 MiB): h2's budget of unread small
    // frames (half the connection window) runs out long before flow control stops the
    // producer, and the whole connection is closed. What the chosen windows prevent.
    let mut settings = test_settings(Duration::from_secs(60));
    settings.grpc.stream_window_bytes = 1024 * 1024;
    settings.grpc.connection_window_bytes = 1024 * 1024;
    let server = server(settings).await;
    let (sent, error) = stall_a_stream(server.addr, false).await;
    let error = error.unwrap_or_else(|| panic!("{sent} frames sent and the connection held"));
    // The client sees the GOAWAY, or a broken pipe if its write lost the race with it.
    assert!(calm(&error) || error.is_io(), "{error:?}");
    await_sample(
        server.http_addr,
        "batch_scaler_connections_closed_total{reason=\"goaway_enhance_your_calm\"}",
        1.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_frames_into_a_stalled_stream_are_refused_and_others_are_served() {
    let server = server(test_settings(Duration::from_secs(60))).await;
    let (sent, error) = stall_a_stream(server.addr, true).await;
    let error = error.unwrap_or_else(|| panic!("{sent} frames sent and the connection held"));
    assert!(calm(&error) || error.is_io(), "{error:?}");
    // Another connection is served all along.
    let mut client = server.client().await;
    client.get_stats(pb::GetStatsRequest {}).await.unwrap();
    await_sample(
        server.http_addr,
        "batch_scaler_connections_closed_total{reason=\"goaway_enhance_your_calm\"}",
        1.0,
    )
    .await;
}
