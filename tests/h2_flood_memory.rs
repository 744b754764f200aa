//! A million one-byte DATA frames from a raw h2 client, as fast as flow control lets it: the
//! service reassembles every message, its memory stays flat, and another connection is
//! served meanwhile. Alone in its own test binary, so that no other test's allocations are
//! counted.

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
    for i in 0..events * event.len() {
        let byte = event.slice(i % event.len()..i % event.len() + 1);
        let sent = send_frame(&mut stream, byte, Duration::from_secs(10)).await;
        if !matches!(sent, Ok(true)) {
            let r = answer.await.unwrap();
            panic!("frame {i}: {sent:?}, answered {r:?}");
        }
    }
    stream.send_data(Bytes::new(), true).unwrap();
    let took = started.elapsed();
    flooding.store(false, Ordering::Relaxed);
    let (slowest, answered) = prober.await.unwrap();
    let response = answer.await.unwrap().unwrap();
    let (bytes, status) = read_answer(response).await;
    assert_eq!(status["grpc-status"], "0", "{status:?}");
    let summary = pb::PublishSummary::decode(&bytes[5..]).unwrap();
    assert_eq!(summary.accepted as usize, events);
    let after = batch_scaler_testkit::process::rss_kib("self");
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!(
        "{} one-byte frames in {took:.1?} ({events} events): RSS {before} KiB -> {after} KiB; \
         another connection answered {answered} calls meanwhile, the slowest in {slowest:.1?}",
        events * event.len()
    );
    assert!(grown_mib < 16.0, "RSS grew {grown_mib:.1} MiB");
    assert!(
        answered >= 1 && slowest < Duration::from_secs(2),
        "{answered} calls, slowest {slowest:?}"
    );
}
