//! Credentials read again while the service runs: the directories of their files are
//! watched (a Kubernetes Secret volume swaps a `..data` symlink there), with a periodic
//! re-read as a fallback. A file whose bytes changed is loaded; if it does not load, the
//! credentials in use stay, the error is logged and counted once per change, naming the file.

use super::metrics::Metrics;
use notify::{RecursiveMode, Watcher};
use std::{
    collections::{HashMap, hash_map::DefaultHasher},
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Something loaded from files that can be loaded again.
pub trait Reload: Send + Sync {
    /// The files it is loaded from (their directories are watched).
    fn files(&self) -> Vec<PathBuf>;
    /// Loads the files again and puts what they hold in use (true), or leaves what is in use
    /// and says why, naming the file (`Err((file, why))`).
    fn reload(&self) -> Result<bool, (PathBuf, String)>;
}

/// Changes coming together (a Secret update writes several files) are read once.
const SETTLE: Duration = Duration::from_millis(100);

/// A fingerprint of the files' bytes (an unreadable file counts as its error).
fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(e) => e.kind().hash(&mut hasher),
        }
    }
    hasher.finish()
}

fn watch_dirs(items: &[Arc<dyn Reload>], changed: mpsc::Sender<()>) -> Option<impl Watcher> {
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = changed.try_send(());
            }
        },
    ) {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch credential files; re-reading them periodically only");
            return None;
        }
    };
    let mut dirs: Vec<PathBuf> = items
        .iter()
        .flat_map(|i| i.files())
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a credentials directory; re-reading it periodically only");
        }
    }
    Some(watcher)
}

/// Reloads `items` after their files change (and every `interval` regardless) until `stop`.
pub async fn run(
    items: Vec<Arc<dyn Reload>>,
    interval: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    if items.is_empty() {
        return;
    }
    let (tx, mut changed) = mpsc::channel(1);
    let _watcher = watch_dirs(&items, tx);
    let mut seen: HashMap<usize, u64> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (i, fingerprint(&item.files())))
        .collect();
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            Some(()) = changed.recv() => {
                tokio::time::sleep(SETTLE).await;
                while changed.try_recv().is_ok() {}
            }
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        for (i, item) in items.iter().enumerate() {
            let files = item.files();
            let now = fingerprint(&files);
            if seen.get(&i) == Some(&now) {
                continue;
            }
            seen.insert(i, now);
            let label = files
                .first()
                .map(|f| f.display().to_string())
                .unwrap_or_default();
            match item.reload() {
                Ok(true) => {
                    tracing::info!(file = %label, "credentials reloaded");
                    metrics.credentials_reload(&label, true);
                }
                Ok(false) => {}
                Err((file, why)) => {
                    let file = file.display().to_string();
                    tracing::warn!(%file, error = %why, "credentials not reloaded: the ones in use stay");
                    metrics.credentials_reload(&file, false);
                }
            }
        }
    }
}
