//! The trace format: one JSON line per `workflow_job` delivery,
//! `{"delivered_at": RFC 3339, "guid": X-GitHub-Delivery, "payload": <the body as received>}`,
//! written by the reference frontend's `--record` and by `batch-scaler record-deliveries`,
//! read by `batch-scaler replay` (plain, or gzip when the file ends in `.gz`).

use crate::domain::{github::payload::Payload, routing::WorkflowJob};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

/// One line of a trace, as written.
#[derive(Clone, Debug, Serialize)]
pub struct TraceLine<'a> {
    /// When the delivery arrived.
    pub delivered_at: String,
    /// `X-GitHub-Delivery`.
    pub guid: &'a str,
    /// The webhook body, unchanged.
    pub payload: &'a serde_json::Value,
}

#[derive(Deserialize)]
struct Line {
    delivered_at: DateTime<Utc>,
    #[serde(default)]
    guid: String,
    payload: Payload,
}

/// One delivery read from a trace.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The job it carried, validated as `ScaleJob` validates one.
    pub job: WorkflowJob,
}

/// A trace that cannot be read; `line` is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a delivery.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: String,
        /// The line number.
        line: usize,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Reads every delivery of the trace at `path`, in arrival order (ties keep file order).
/// `progress` is told the bytes read so far.
pub fn read(path: &Path, mut progress: impl FnMut(u64)) -> Result<Vec<Delivery>, TraceError> {
    let name = path.display().to_string();
    let io = |source| TraceError::Io {
        path: name.clone(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let read_bytes = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: file,
        read: read_bytes.clone(),
    };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let mut reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(counted)))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, counted))
    };
    let mut out = Vec::new();
    let mut text = String::new();
    let mut number = 0usize;
    loop {
        text.clear();
        let n = reader.read_line(&mut text).map_err(io)?;
        if n == 0 {
            break;
        }
        number += 1;
        if number.is_multiple_of(4096) {
            progress(read_bytes.load(Ordering::Relaxed));
        }
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        out.push(parse_line(trimmed).map_err(|message| TraceError::Line {
            path: name.clone(),
            line: number,
            message,
        })?);
    }
    out.sort_by_key(|d| d.at);
    Ok(out)
}

/// Parses one line, naming the field at fault.
pub fn parse_line(text: &str) -> Result<Delivery, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let line: Line = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." | "" => e.into_inner().to_string(),
            _ => format!("{path}: {}", e.into_inner()),
        }
    })?;
    // Payload times may be at most an hour after the delivery's arrival, as the service
    // checks them against its own clock.
    let job = line
        .payload
        .workflow_job(&line.guid, line.delivered_at)
        .map_err(|e| format!("payload.{}: {}", e.field, e.message))?;
    Ok(Delivery {
        at: line.delivered_at,
        job,
    })
}

/// Counts the bytes read from the file (compressed bytes for a `.gz`), for the progress bar.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
