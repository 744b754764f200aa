//! Forwarding an event to its HRA's owner: with several replicas, each HRA has one owner (see
//! `domain::ownership`), and a replica that receives an event for an HRA it does not own
//! passes it on over a `Forward` stream to that owner (`peer_link.rs`), authenticated as
//! producers are. The owner applies what it is forwarded whatever it thinks of ownership (no
//! loops), deduplicates event ids and writes each HRA once per window. An owner that cannot
//! be reached, or is shutting down, never stalls intake: the receiver applies the event
//! itself, and conditional writes keep that correct.

use super::{
    pb::batch_scaler_client::BatchScalerClient,
    peer_link::{Opener, PeerLink, Signer},
};
use crate::{
    domain::{
        hra::HraKey,
        ownership::{Member, owner},
    },
    ops::metrics::Metrics,
    store::membership::Membership,
};
use parking_lot::Mutex;
use std::{collections::HashMap, sync::Arc, time::Duration};
use tonic::{
    Request,
    metadata::MetadataValue,
    transport::{ClientTlsConfig, Endpoint},
};

/// Metadata of a forwarded stream: the replica that forwarded it.
pub const FORWARDED_BY: &str = "x-batch-scaler-forwarded-by";

/// Longest a forward that does not wait for a batch may take before the receiver applies the
/// event itself.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// Where an event goes.
pub enum Destination {
    /// This replica applies it.
    Local,
    /// Its owner does, over this link.
    Owner(PeerLink),
}

/// HTTP/2 window of a `Forward` link's answer stream.
const LINK_STREAM_WINDOW: u32 = 64 * 1024;
/// HTTP/2 window of a `Forward` link's connection (h2's small-frame budget is half of it).
const LINK_CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// The other replicas, and links to them.
pub struct Peers {
    membership: Arc<Membership>,
    links: Mutex<HashMap<String, PeerLink>>,
    /// The bearer token presented to peers (they read the same token file).
    token: Box<dyn Fn() -> Option<String> + Send + Sync>,
    tls: Option<ClientTlsConfig>,
    metrics: Arc<Metrics>,
    /// Set once this replica shuts down: every event goes to another member.
    leaving: std::sync::atomic::AtomicBool,
}

impl Peers {
    /// Forwarding over `membership`, presenting `token()` and, with TLS, `tls`.
    pub fn new(
        membership: Arc<Membership>,
        token: Box<dyn Fn() -> Option<String> + Send + Sync>,
        tls: Option<ClientTlsConfig>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            membership,
            links: Mutex::default(),
            token: Box::new(token),
            tls,
            metrics,
            leaving: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on this replica owns nothing: events it still receives (on connections open
    /// when shutdown started) go to the other members instead of being refused.
    pub fn start_leaving(&self) {
        self.leaving
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The members that may own an HRA now.
    fn owners(&self) -> Vec<Member> {
        let members = self.membership.members();
        if self.leaving.load(std::sync::atomic::Ordering::Relaxed) {
            let me = self.membership.identity();
            members.iter().filter(|m| m.id != me).cloned().collect()
        } else {
            members.to_vec()
        }
    }

    /// The owner of `key`: this replica, or a link to another.
    pub fn destination(&self, key: &HraKey) -> Destination {
        let members = self.owners();
        match owner(key, &members) {
            Some(m) if m.id != self.membership.identity() => match self.link(m) {
                Some(link) => Destination::Owner(link),
                None => Destination::Local,
            },
            _ => Destination::Local,
        }
    }

    /// True if this replica owns `key`.
    pub fn owns(&self, key: &HraKey) -> bool {
        let members = self.owners();
        owner(key, &members).is_none_or(|m| m.id == self.membership.identity())
    }

    /// Live members now.
    pub fn members(&self) -> usize {
        self.membership.members().len()
    }

    /// The membership forwarding follows.
    pub fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }

    fn link(&self, member: &Member) -> Option<PeerLink> {
        let mut links = self.links.lock();
        if let Some(link) = links.get(&member.address) {
            return Some(link.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", member.address))
            .ok()?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            // Set, never adaptive: the owner answers each forwarded message with its own
            // small message on one long stream, and h2 closes the link (GOAWAY
            // ENHANCE_YOUR_CALM) once unread small frames cost more than half the connection
            // window. 64 KiB per stream keeps the unread answers far below that budget (4 MiB).
            .initial_stream_window_size(LINK_STREAM_WINDOW)
            .initial_connection_window_size(LINK_CONNECTION_WINDOW)
            .http2_adaptive_window(false);
        if let Some(tls) = &self.tls {
            let host = member
                .address
                .rsplit_once(':')
                .map_or(&*member.address, |(h, _)| h);
            endpoint = endpoint.tls_config(tls.clone().domain_name(host)).ok()?;
        }
        let client = BatchScalerClient::new(endpoint.connect_lazy());
        let me = MetadataValue::try_from(self.membership.identity()).ok();
        let token =
            (self.token)().and_then(|t| MetadataValue::try_from(format!("Bearer {t}")).ok());
        let sign: Signer = Arc::new(move |metadata| {
            if let Some(me) = &me {
                metadata.insert(FORWARDED_BY, me.clone());
            }
            if let Some(token) = &token {
                metadata.insert("authorization", token.clone());
            }
        });
        let signer = sign.clone();
        let open: Opener = Box::new(move |events| {
            let mut request = Request::new(events);
            signer(request.metadata_mut());
            request
        });
        let link = PeerLink::start(&member.address, client, open, sign);
        links.insert(member.address.clone(), link.clone());
        Some(link)
    }

    /// Counts `n` events by what forwarding did with them.
    pub fn counted(&self, result: &'static str, n: u64) {
        self.metrics.forwarded(result, n);
    }
}
