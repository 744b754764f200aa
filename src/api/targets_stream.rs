//! `WatchTargets`: every HRA once, then only the HRAs that changed, for dashboards of
//! thousands of HRAs. Each watch compares the HRAs (read from the store, whose watch cache
//! serves them) with what it last sent, about every second, and sends the difference.

use super::{
    convert,
    error::ApiError,
    pb,
    service::BatchScalerService,
    targets_cache::{Row, TargetsStream},
};
use prost::Message as _;
use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// How often a watch looks for changes.
const TICK: Duration = Duration::from_secs(1);

/// What a row's content hashes to: a change of any field changes it.
fn fingerprint(t: &pb::Target) -> u64 {
    let mut h = DefaultHasher::new();
    t.encode_to_vec().hash(&mut h);
    h.finish()
}

impl BatchScalerService {
    /// The HRAs (of `namespace`) as `ListTargets` gives them, ordered by namespace and name;
    /// without their reservations unless `reservations`.
    pub(super) async fn target_rows(
        &self,
        namespace: Option<&str>,
        reservations: bool,
    ) -> Result<Vec<pb::Target>, ApiError> {
        let hras = self.store.list(namespace).await?;
        let now = (self.clock)();
        let jobs = self.engine.ledgers.summaries();
        let mut targets: Vec<pb::Target> = hras
            .into_iter()
            .filter(|h| self.allowed.allows(&h.key.namespace))
            .map(|h| {
                let last = self.engine.hub.last(&h.key);
                let summary = jobs.get(&h.key).copied();
                let mut target = convert::target(h, now);
                if !reservations {
                    target.capacity_reservations = Vec::new();
                }
                target.last_batch = last.map(|r| convert::batch_result(&r, 0));
                if let Some(s) = summary {
                    target.job_wait_p90 = s.wait_p90.map(convert::seconds_to_pb);
                    target.utilization = s.utilization;
                    target.jobs_waiting = u32::try_from(s.jobs_waiting).unwrap_or(u32::MAX);
                    target.jobs_expired_before_start = s.expired_before_start;
                }
                target
            })
            .collect();
        targets.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(targets)
    }

    /// Every HRA as an overview row with its fingerprint, read at most once a tick however
    /// many watches ask (they share it).
    async fn shared_rows(&self) -> Result<Arc<Vec<Row>>, ApiError> {
        let mut cached = self.targets_cache.lock().await;
        if let Some((at, rows)) = cached.as_ref()
            && at.elapsed() < TICK / 2
        {
            return Ok(rows.clone());
        }
        let rows: Arc<Vec<Row>> = Arc::new(
            self.target_rows(None, false)
                .await?
                .into_iter()
                .map(|target| Row {
                    key: Arc::from(format!("{}/{}", target.namespace, target.name)),
                    print: fingerprint(&target),
                    target,
                })
                .collect(),
        );
        *cached = Some((Instant::now(), rows.clone()));
        Ok(rows)
    }

    /// The `WatchTargets` stream of `namespace`'s HRAs (every namespace if `None`).
    pub(super) fn watch_targets(&self, namespace: Option<String>) -> TargetsStream {
        let (tx, rx) = mpsc::channel(2);
        let service = self.clone();
        tokio::spawn(async move {
            let mut sent: HashMap<Arc<str>, u64> = HashMap::new();
            let mut snapshot = true;
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                    _ = service.shutdown.cancelled() => return,
                }
                let rows = match service.shared_rows().await {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                let mut update = pb::TargetsUpdate {
                    snapshot,
                    ..Default::default()
                };
                let wanted = |row: &&Row| {
                    namespace
                        .as_ref()
                        .is_none_or(|ns| row.target.namespace == *ns)
                };
                let mut present = HashSet::with_capacity(sent.len());
                for row in rows.iter().filter(wanted) {
                    present.insert(row.key.clone());
                    if sent.insert(row.key.clone(), row.print) != Some(row.print) {
                        update.targets.push(row.target.clone());
                    }
                }
                sent.retain(|key, _| {
                    let kept = present.contains(key);
                    if !kept && let Some((namespace, name)) = key.split_once('/') {
                        update.removed.push(pb::TargetRef {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        });
                    }
                    kept
                });
                if snapshot || !update.targets.is_empty() || !update.removed.is_empty() {
                    snapshot = false;
                    if tx.send(Ok(update)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}
