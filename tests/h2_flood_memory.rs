//! A million one-byte DATA frames from a raw h2 client, as fast as flow control lets it: the
//! service reassembles every message (or, if it falls behind, refuses the flood), its memory
//! stays flat, and another connection is served meanwhile. Alone in its own test binary, so
//! that no other test's allocations are counted.

mod common;

use batch_scaler::{api::pb, store::MemoryStore};
use batch_scaler_testkit::h2_raw::{connect, framed, grpc_call, read_answer, send_frame};
use bytes::Bytes;
use common::*;
use prost::Message;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_one_byte_frames_leave_memory_flat_and_others_are_served() {
    const FRAMES: usize = 1_000_000;
    // 55,000 events to one HRA: past the default per-HRA bound, which is not what this is about.
    let mut settings = test_settings(Duration::from_secs(60));
    settings.engine.bounds = Default::default();
    let store = MemoryStore::with_objects([hra_object("ci", "flood", None)]).unwrap();
    let (server, _store) = TestServer::with_store(store, settings).await;
    let (send, _conn) = connect(server.addr).await;
    let mut send = send.ready().await.unwrap();
    let (answer, mut stream) = send
        .send_request(grpc_call(server.addr, "Publish"), false)
        .unwrap();
    // Valid id-less events (18 bytes each), cut into one-byte frames: the handler must
    // reassemble every one of them.
    let event = framed(&ev("ci", "flood", 1));
    let events = FRAMES / event.len();
    let before = batch_scaler_testkit::process::rss_kib("self");
    let mut other = server.client().await;
    let flooding = Arc::new(AtomicBool::new(true));
    let prober = tokio::spawn({
        let flooding = flooding.clone();
        async move {
            let (mut slowest, mut answered) = (Duration::ZERO, 0);
            while flooding.load(Ordering::Relaxed) {
                let started = Instant::now();
                other.get_stats(pb::GetStatsRequest {}).await.unwrap();
                slowest = slowest.max(started.elapsed());
                answered += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (slowest, answered)
        }
    });
    let started = Instant::now();
    let answer = tokio::spawn(answer);
    let mut cut_at = None;
    for i in 0..events * event.len() {
        let byte = event.slice(i % event.len()..i % event.len() + 1);
        if !matches!(
            send_frame(&mut stream, byte, Duration::from_secs(10)).await,
            Ok(true)
        ) {
            cut_at = Some(i);
            break;
        }
    }
    let took = started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let (slowest, answered) = prober.await.unwrap();
    // Throttled (flow control paced it and the handler read every byte) or refused (the
    // handler fell behind on a busy machine, one-byte frames piled up unread and h2 closed
    // the connection): either way counted, and nothing else suffers.
    let outcome = match cut_at {
        None => {
            stream.send_data(Bytes::new(), true).unwrap();
            let (bytes, status) = read_answer(answer.await.unwrap().unwrap()).await;
            assert_eq!(status["grpc-status"], "0", "{status:?}");
            let summary = pb::PublishSummary::decode(&bytes[5..]).unwrap();
            assert_eq!(summary.accepted as usize, events);
            "read whole".to_owned()
        }
        Some(i) => {
            await_sample(
                server.http_addr,
                "batch_scaler_connections_closed_total{reason=\"goaway_enhance_your_calm\"}",
                1.0,
            )
            .await;
            format!("refused with GOAWAY ENHANCE_YOUR_CALM after {i} frames")
        }
    };
    let after = batch_scaler_testkit::process::rss_kib("self");
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!(
        "{} one-byte frames ({events} events), {outcome} in {took:.1?}: RSS {before} KiB -> \
         {after} KiB; another connection answered {answered} calls meanwhile, the slowest in \
         {slowest:.1?}",
        events * event.len()
    );
    assert!(grown_mib < 16.0, "RSS grew {grown_mib:.1} MiB");
    assert!(
        answered >= 1 && slowest < Duration::from_secs(2),
        "{answered} calls, slowest {slowest:?}"
    );
}
