//! Membership of an installation's replicas, from Kubernetes Leases (`coordination.k8s.io/v1`)
//! in the service's namespace: each replica holds a Lease of its own, renewed every few
//! seconds and carrying its gRPC address; the Leases not yet expired are the live members.
//! There is no election: every replica computes the same owner of each HRA from the same
//! members (`domain::ownership`). A replica that stops (or is killed) stops renewing, and
//! the others drop it once its Lease expires; one that shuts down expires its Lease at once.

use crate::domain::ownership::Member;
use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
    runtime::{WatchStreamExt, reflector, watcher},
};
use std::{collections::BTreeMap, pin::pin, sync::Arc, time::Duration};
use tokio::{sync::watch, task::JoinHandle};
use tokio_stream::StreamExt;

/// Label every member Lease carries (and the watch selects on).
pub const MEMBER_LABEL: &str = "batch-scaler.actions.summerwind.dev/member";
/// Annotation of a member Lease: the replica's gRPC `host:port`.
pub const ADDRESS_ANNOTATION: &str = "batch-scaler.actions.summerwind.dev/address";

/// Who this replica is and how it takes part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipConfig {
    /// Namespace of the Leases (the service's own).
    pub namespace: String,
    /// This replica (its pod name).
    pub identity: String,
    /// Where its gRPC port answers, `host:port`.
    pub address: String,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// How often it is renewed.
    pub renew_every: Duration,
}

/// The live members, as this replica sees them.
pub struct Membership {
    config: MembershipConfig,
    api: Api<Lease>,
    members: watch::Receiver<Arc<Vec<Member>>>,
    tasks: Vec<JoinHandle<()>>,
}

fn now_micro() -> MicroTime {
    MicroTime(
        Timestamp::from_millisecond(Utc::now().timestamp_millis()).unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

fn lease_name(identity: &str) -> String {
    format!("batch-scaler-member-{identity}")
}

/// True if a Lease with this spec is held no more at `now`.
fn expired(spec: &LeaseSpec, now: DateTime<Utc>) -> bool {
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    renewed.0.as_millisecond() + i64::from(seconds) * 1000 <= now.timestamp_millis()
}

/// The member a Lease stands for, if it has not expired at `now`.
fn live_member(lease: &Lease, now: DateTime<Utc>) -> Option<Member> {
    let spec = lease.spec.as_ref()?;
    let id = spec.holder_identity.clone().filter(|id| !id.is_empty())?;
    if expired(spec, now) {
        return None;
    }
    let address = lease
        .metadata
        .annotations
        .as_ref()?
        .get(ADDRESS_ANNOTATION)?
        .clone();
    Some(Member { id, address })
}

impl Membership {
    /// Starts holding this replica's Lease and watching the others'.
    pub fn start(client: Client, config: MembershipConfig) -> Self {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let me = Member {
            id: config.identity.clone(),
            address: config.address.clone(),
        };
        let (publish, members) = watch::channel(Arc::new(vec![me.clone()]));
        let (reader, writer) = reflector::store();
        let selector = format!("{MEMBER_LABEL}=true");
        let stream = reflector(
            writer,
            watcher(api.clone(), watcher::Config::default().labels(&selector)).default_backoff(),
        );
        let mut tasks = Vec::new();
        let (renew_api, renew_config) = (api.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = renew(&renew_api, &renew_config).await {
                    tracing::warn!(error = %e, "renewing this replica's member Lease failed; retrying");
                }
                tokio::time::sleep(renew_config.renew_every).await;
            }
        }));
        tasks.push(tokio::spawn(async move {
            let mut stream = pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    tracing::debug!(error = %e, "member Lease watch failed; retrying");
                }
            }
        }));
        // Leases expire by the clock, not by an event: the view is refreshed every second.
        tasks.push(tokio::spawn(async move {
            loop {
                let now = Utc::now();
                let mut live: Vec<Member> = reader
                    .state()
                    .iter()
                    .filter_map(|l| live_member(l, now))
                    .filter(|m| m.id != me.id)
                    .collect();
                // This replica counts itself live while it runs, whatever the API server
                // answered last: at worst two replicas write one HRA for a while, which
                // conditional writes keep correct.
                live.push(me.clone());
                live.sort();
                publish.send_if_modified(|current| {
                    let changed = **current != live;
                    if changed {
                        *current = Arc::new(live.clone());
                    }
                    changed
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
        Self {
            config,
            api,
            members,
            tasks,
        }
    }

    /// The live members now, sorted.
    pub fn members(&self) -> Arc<Vec<Member>> {
        self.members.borrow().clone()
    }

    /// A receiver told of every change of the members.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<Member>>> {
        self.members.clone()
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Expires this replica's Lease at once (on shutdown), so the others take over its HRAs
    /// without waiting for it to expire.
    pub async fn leave(&self) {
        for task in &self.tasks {
            task.abort();
        }
        let name = lease_name(&self.config.identity);
        if let Ok(mut lease) = self.api.get(&name).await {
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(MicroTime(Timestamp::UNIX_EPOCH));
            }
            if let Err(e) = self
                .api
                .replace(&name, &PostParams::default(), &lease)
                .await
            {
                tracing::debug!(error = %e, "expiring this replica's member Lease failed");
            }
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Creates or renews this replica's Lease (conditional on the version read).
async fn renew(api: &Api<Lease>, config: &MembershipConfig) -> Result<(), kube::Error> {
    let name = lease_name(&config.identity);
    let now = now_micro();
    let duration = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let labels = BTreeMap::from([(MEMBER_LABEL.to_owned(), "true".to_owned())]);
    let annotations = BTreeMap::from([(ADDRESS_ANNOTATION.to_owned(), config.address.clone())]);
    match api.get_opt(&name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await?;
        }
        Some(mut lease) => {
            lease.metadata.labels.get_or_insert_default().extend(labels);
            lease
                .metadata
                .annotations
                .get_or_insert_default()
                .extend(annotations);
            let spec = lease.spec.get_or_insert_default();
            if expired(spec, Utc::now()) {
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.holder_identity = Some(config.identity.clone());
            spec.lease_duration_seconds = Some(duration);
            spec.renew_time = Some(now);
            api.replace(
                &lease_name(&config.identity),
                &PostParams::default(),
                &lease,
            )
            .await?;
        }
    }
    Ok(())
}
