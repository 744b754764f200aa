//! Serves the OTLP trace receiver on its own, for checking traces across processes (the
//! release binary, the Python frontend): writes its endpoint once serving, and every 200 ms
//! writes every span received so far to SPANS_FILE, one JSON object per line.
//!
//! ```text
//! otlp-receiver ENDPOINT_FILE SPANS_FILE &
//! batch-scaler --otlp-endpoint "$(cat ENDPOINT_FILE)"
//! ```

use batch_scaler_testkit::otlp::OtlpReceiver;
use serde_json::json;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint_file, spans_file] = &args[..] else {
        eprintln!("usage: otlp-receiver ENDPOINT_FILE SPANS_FILE");
        std::process::exit(2);
    };
    let receiver = OtlpReceiver::start().await;
    if let Err(e) = std::fs::write(endpoint_file, receiver.endpoint()) {
        eprintln!("writing {endpoint_file}: {e}");
        std::process::exit(1);
    }
    println!("receiving OTLP traces on {}", receiver.endpoint());
    let mut written = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let spans = receiver.spans();
        if spans.len() == written {
            continue;
        }
        written = spans.len();
        let lines: String = spans
            .iter()
            .map(|s| {
                json!({"trace_id": s.trace_id, "span_id": s.span_id, "parent_span_id": s.parent_span_id,
                    "name": s.name, "service": s.service, "attributes": s.attributes,
                    "links": s.links})
                .to_string()
                    + "\n"
            })
            .collect();
        let tmp = format!("{spans_file}.tmp");
        if std::fs::write(&tmp, lines).is_ok() {
            let _ = std::fs::rename(&tmp, spans_file);
        }
    }
}
