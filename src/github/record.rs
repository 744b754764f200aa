//! `batch-scaler record-deliveries`: a trace of a hook's `workflow_job` deliveries (GitHub
//! keeps three days), through drift repair's client (its credentials, budget and rate-limit
//! pauses), written oldest first in the trace format replay reads.

use super::client::{As, CallError, GithubClient};
use crate::domain::github::{
    delivery::DeliverySummary,
    hook::HookSpec,
    payload::DeliveryDetail,
    rest::{next_cursor, query_escape},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::{collections::HashSet, io::Write};

/// Why a recording stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// GitHub could not be asked.
    #[error("{what}: {source}")]
    Call {
        /// The request.
        what: String,
        /// Why.
        #[source]
        source: CallError,
    },
    /// GitHub answered with an error.
    #[error("{what}: GitHub answered {status}: {body}")]
    Status {
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// An answer could not be read.
    #[error("{what}: {message}")]
    Unreadable {
        /// The request.
        what: String,
        /// Why.
        message: String,
    },
    /// The trace could not be written.
    #[error("writing the trace: {0}")]
    Write(#[from] std::io::Error),
}

/// What a recording wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Lines written.
    pub deliveries: u64,
    /// Deliveries of other events, and redeliveries of a guid already written.
    pub skipped: u64,
    /// Deliveries GitHub no longer had when asked.
    pub gone: u64,
}

/// Sends `path` again after each pause GitHub or the budget asks for.
async fn get(
    client: &GithubClient,
    endpoint: &'static str,
    path: &str,
    who: As,
) -> Result<super::client::Answer, RecordError> {
    loop {
        match client.get(endpoint, path, who).await {
            Err(CallError::Wait(w)) => tokio::time::sleep_until(w.until()).await,
            Err(source) => {
                return Err(RecordError::Call {
                    what: format!("GET {path}"),
                    source,
                });
            }
            // Over GitHub's rate limit: the client now holds a pause; wait it out.
            Ok(answer) if matches!(answer.status, 403 | 429) && client.paused().is_some() => {
                if let Some(until) = client.paused() {
                    tokio::time::sleep_until(until).await;
                }
            }
            Ok(answer) => return Ok(answer),
        }
    }
}

/// Records the `workflow_job` deliveries of `hook` delivered since `since` into `out`, one
/// line per guid (its first delivery), oldest first. `progress` is told `(done, total)`.
pub async fn record(
    client: &GithubClient,
    hook: &HookSpec,
    since: DateTime<Utc>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Recorded, RecordError> {
    let who = if hook.needs_app_jwt() {
        As::App
    } else {
        As::Installation
    };
    let mut listed: Vec<DeliverySummary> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut recorded = Recorded::default();
    loop {
        let mut path = format!("{}?per_page=100", hook.deliveries_path());
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&query_escape(c));
        }
        let answer = get(client, "deliveries", &path, who).await?;
        if answer.status != 200 {
            return Err(status(&path, answer.status, &answer.body));
        }
        let page: Vec<DeliverySummary> =
            serde_json::from_slice(&answer.body).map_err(|e| RecordError::Unreadable {
                what: format!("GET {path}"),
                message: e.to_string(),
            })?;
        // Newest first: a page reaching past `since` is the last one needed.
        let older = page
            .iter()
            .any(|d| d.delivered_at.is_some_and(|t| t < since));
        listed.extend(
            page.into_iter()
                .filter(|d| d.delivered_at.is_some_and(|t| t >= since)),
        );
        progress(0, listed.len() as u64);
        match answer.link.as_deref().and_then(next_cursor) {
            Some(next) if !older => cursor = Some(next),
            _ => break,
        }
    }
    listed.sort_by_key(|d| (d.delivered_at, d.id));
    let mut seen = HashSet::new();
    let wanted: Vec<DeliverySummary> = listed
        .into_iter()
        .filter(|d| {
            let keep = d.event == "workflow_job" && seen.insert(d.guid.clone());
            if !keep {
                recorded.skipped += 1;
            }
            keep
        })
        .collect();
    let total = wanted.len() as u64;
    for (i, d) in wanted.iter().enumerate() {
        let path = format!("{}/{}", hook.deliveries_path(), d.id);
        let answer = get(client, "delivery", &path, who).await?;
        match answer.status {
            200 => {}
            404 => {
                recorded.gone += 1;
                continue;
            }
            s => return Err(status(&path, s, &answer.body)),
        }
        let detail: DeliveryDetail =
            serde_json::from_slice(&answer.body).map_err(|e| RecordError::Unreadable {
                what: format!("GET {path}"),
                message: e.to_string(),
            })?;
        let payload = match detail.request.and_then(|r| r.payload) {
            Some(Value::String(text)) => {
                serde_json::from_str(&text).map_err(|e| RecordError::Unreadable {
                    what: format!("GET {path}: request.payload"),
                    message: e.to_string(),
                })?
            }
            Some(v) => v,
            None => {
                recorded.gone += 1;
                continue;
            }
        };
        let delivered = d
            .delivered_at
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let line = json!({"delivered_at": delivered, "guid": d.guid, "payload": payload});
        serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        recorded.deliveries += 1;
        progress(i as u64 + 1, total);
    }
    out.flush()?;
    Ok(recorded)
}

fn status(path: &str, status: u16, body: &[u8]) -> RecordError {
    let text = String::from_utf8_lossy(body);
    RecordError::Status {
        what: format!("GET {path}"),
        status,
        body: text.chars().take(200).collect(),
    }
}
