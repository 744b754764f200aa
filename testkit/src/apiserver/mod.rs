//! A small Kubernetes API server for the HorizontalRunnerAutoscaler CRD, on 127.0.0.1:0,
//! faithful enough that `kube::Client` cannot tell: GET, LIST, WATCH, POST, merge PATCH
//! (RFC 7386) with resourceVersion preconditions, `Status` bodies for 404/409/422,
//! `?dryRun=All`, and hooks to inject faults and latency and to count requests by verb.
//! Objects are kept by the service's own [`Objects`] (the memory store's code) and checked
//! against the same schema. It also answers what a test needs of a real cluster: creating
//! namespaces and looking up / installing the CRD.

mod routes;
pub mod schema;
mod verbs;
mod watch_stream;

use routes::handle;

use batch_scaler::store::{
    objects::{ObjectError, ObjectKey, Objects, SchemaViolation, key_of},
    resource::{GROUP, PLURAL, VERSION, hra_schema},
    runners::{RUNNER_DEPLOYMENT, RUNNER_DEPLOYMENTS, RUNNER_SET, RUNNER_SETS},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{broadcast, watch};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::{StreamExt, wrappers::BroadcastStream};

/// Name of the HRA CRD, as `kubectl get crd` shows it.
pub const CRD_NAME: &str = "horizontalrunnerautoscalers.actions.summerwind.dev";

type Key = ObjectKey;
/// An edit another writer makes to a whole stored object.
pub type ObjectEdit = Box<dyn FnOnce(&mut Value) + Send>;

/// What the next request of a verb meets instead of normal service.
pub enum Fault {
    /// Answer with this HTTP status (and a matching `Status` body), changing nothing.
    Status(u16),
    /// (PATCH) apply the write, then close the connection without answering.
    ApplyThenDrop,
    /// (PATCH) apply the write, then wait this long before answering.
    ApplyThenStall(Duration),
}

struct State {
    objects: Objects,
    /// RunnerDeployments and RunnerSets, by plural.
    runners: BTreeMap<&'static str, Objects>,
    /// Resources answered with 404, as on a cluster without their CRD.
    absent: Vec<&'static str>,
    latency: Duration,
    faults: HashMap<&'static str, VecDeque<Fault>>,
    after_get: HashMap<Key, VecDeque<ObjectEdit>>,
    counts: HashMap<&'static str, u64>,
    patches: Vec<Value>,
    /// Every recent change (and when it was made), for watches resuming from a
    /// resourceVersion.
    history: VecDeque<(std::time::Instant, WatchEvent)>,
    /// Per resource, the newest revision dropped from `history` (older watches get 410).
    compacted: HashMap<&'static str, u64>,
    /// Per resource, the revision of the last [`ApiServer::compact`] (etcd's compaction):
    /// continue tokens older than it get 410. Unlike watches, a LIST's continue token does not
    /// expire as the watch history slides: etcd keeps every revision until it compacts
    /// (every 5 minutes by default), so a long paged LIST survives any number of writes.
    list_compacted: HashMap<&'static str, u64>,
    changes: Option<broadcast::Sender<WatchEvent>>,
    /// Bumped to end every open watch stream.
    watch_epoch: Option<watch::Sender<u64>>,
    /// While true, watch streams deliver nothing (a lagging watch).
    watch_held: Option<watch::Sender<bool>>,
    /// HRAs whose every PATCH fails with this status after this long (a webhook that cannot
    /// be reached, or times out).
    failing: HashMap<Key, (u16, Duration)>,
    /// Namespaces the client may use (a namespaced Role); `None`: everything.
    allowed_namespaces: Option<Vec<String>>,
    /// Plurals whose LISTs wait while their gate is closed (a cache still syncing).
    list_gates: HashMap<&'static str, watch::Sender<bool>>,
    /// Leases (`coordination.k8s.io/v1`).
    leases: Objects,
    /// Most objects one LIST answers, whatever its `limit` (small, so clients page).
    page_size: usize,
}

impl Default for State {
    fn default() -> Self {
        Self {
            objects: Objects::new(hra_schema),
            runners: [RUNNER_DEPLOYMENTS, RUNNER_SETS]
                .into_iter()
                .map(|plural| (plural, Objects::new(|_| Ok(()))))
                .collect(),
            absent: Vec::new(),
            latency: Duration::ZERO,
            faults: HashMap::new(),
            after_get: HashMap::new(),
            counts: HashMap::new(),
            patches: Vec::new(),
            history: VecDeque::new(),
            compacted: HashMap::new(),
            list_compacted: HashMap::new(),
            changes: None,
            watch_epoch: None,
            watch_held: None,
            failing: HashMap::new(),
            allowed_namespaces: None,
            list_gates: HashMap::new(),
            leases: Objects::new(lease_schema),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// The test API server's own page size: small, so every client's paging is exercised.
pub const DEFAULT_PAGE_SIZE: usize = 3;

/// Plural of Leases.
pub const LEASES: &str = "leases";
/// API group of Leases.
pub const COORDINATION: &str = "coordination.k8s.io";

/// The types of a Lease's spec, as the API server validates them.
fn lease_schema(object: &Value) -> Result<(), SchemaViolation> {
    let spec = &object["spec"];
    let check = |field: &str, ok: fn(&Value) -> bool| match spec.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if ok(v) => Ok(()),
        Some(v) => Err(SchemaViolation(format!("spec.{field}: invalid value {v}"))),
    };
    check("holderIdentity", Value::is_string)?;
    check("leaseDurationSeconds", Value::is_i64)?;
    check("leaseTransitions", Value::is_i64)?;
    let time = |v: &Value| {
        v.as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    };
    check("acquireTime", time)?;
    check("renewTime", time)
}

impl State {
    /// The objects of a resource (`PLURAL` or a runner plural).
    fn of(&mut self, plural: &'static str) -> &mut Objects {
        if plural == LEASES {
            return &mut self.leases;
        }
        match self.runners.get_mut(plural) {
            Some(objects) => objects,
            None => &mut self.objects,
        }
    }
}

/// The custom resources served: HRAs, RunnerDeployments, RunnerSets.
const PLURALS: [&str; 3] = [PLURAL, RUNNER_DEPLOYMENTS, RUNNER_SETS];

/// The plural of an object's kind (an HRA unless it says otherwise).
pub(crate) fn plural_of(object: &Value) -> &'static str {
    match object["kind"].as_str() {
        Some(RUNNER_DEPLOYMENT) => RUNNER_DEPLOYMENTS,
        Some(RUNNER_SET) => RUNNER_SETS,
        _ => PLURAL,
    }
}

#[derive(Clone)]
struct WatchEvent {
    plural: &'static str,
    revision: u64,
    kind: &'static str,
    object: Value,
}

/// Changes kept for watches resuming from a resourceVersion: as kube-apiserver's watch
/// cache, up to 100 × 1,024 events, dropped once older than 75 s. (A window of 1,000 changes
/// sent a watcher that listed while the bench wrote 1,000 HRAs a 410 at every start, so it
/// never watched.)
const HISTORY_KEPT: usize = 100 * 1024;
/// How long a change stays in the watch history once more recent ones exist.
const HISTORY_FRESH: std::time::Duration = std::time::Duration::from_secs(75);
/// Patch bodies kept for [`ApiServer::patches`].
const PATCHES_KEPT: usize = 1000;

/// Records a change for watchers (the object carries its new resourceVersion).
fn record(s: &mut State, plural: &'static str, kind: &'static str, object: &Value) {
    let event = WatchEvent {
        plural,
        revision: s.of(plural).revision(),
        kind,
        object: object.clone(),
    };
    let now = std::time::Instant::now();
    s.history.push_back((now, event.clone()));
    // Like the API server's watch cache: a bounded window of changes; watches from older
    // resourceVersions are told 410.
    while s.history.len() > HISTORY_KEPT
        || s.history
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > HISTORY_FRESH)
    {
        let Some((_, old)) = s.history.pop_front() else {
            break;
        };
        s.compacted.insert(old.plural, old.revision);
    }
    if let Some(tx) = &s.changes {
        let _ = tx.send(event);
    }
}

/// The running test API server.
pub struct ApiServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

enum Reply {
    Json(StatusCode, Value),
    Watch(Body),
    Drop,
}

fn status(code: u16, reason: &str, message: String, name: &str) -> Reply {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
        "details": {"name": name, "group": GROUP, "kind": PLURAL},
    });
    Reply::Json(StatusCode::from_u16(code).expect("valid code"), body)
}

fn not_found(plural: &str, name: &str) -> Reply {
    let group = if plural == LEASES {
        COORDINATION
    } else {
        GROUP
    };
    status(
        404,
        "NotFound",
        format!("{plural}.{group} \"{name}\" not found"),
        name,
    )
}

impl ApiServer {
    /// Starts a server with no objects.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            changes: Some(broadcast::channel(4096).0),
            watch_epoch: Some(watch::channel(0).0),
            watch_held: Some(watch::channel(false).0),
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// A real kube client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Stores an object (an HRA, RunnerDeployment or RunnerSet, by `kind`) as POST would
    /// (namespace `default` if none).
    pub fn insert(&self, object: Value) {
        let mut s = self.lock();
        let plural = plural_of(&object);
        let stored = s.of(plural).put(object).expect("a valid object");
        record(&mut s, plural, "ADDED", &stored);
    }

    /// Refuses HRA patches whose result exceeds `limit` bytes, with the 500 "etcdserver:
    /// request is too large" many API servers answer.
    pub fn limit_object_bytes(&self, limit: usize) {
        self.lock().objects.limit_bytes(Some(limit));
    }

    /// Answers every request for RunnerSets with 404, as a cluster without that CRD does.
    pub fn without_runner_sets(&self) {
        self.lock().absent.push(RUNNER_SETS);
    }

    /// Holds back (true) or releases (false) what watch streams deliver.
    pub fn hold_watches(&self, held: bool) {
        let s = self.lock();
        s.watch_held.as_ref().unwrap().send_replace(held);
    }

    /// Ends every open watch stream (clients re-watch from their last resourceVersion).
    pub fn drop_watches(&self) {
        let s = self.lock();
        if let Some(epoch) = &s.watch_epoch {
            epoch.send_modify(|e| *e += 1);
        }
    }

    /// The stored object.
    pub fn object(&self, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(namespace.into(), name.into()))
            .cloned()
    }

    /// The stored reservation list's length.
    pub fn reservations(&self, namespace: &str, name: &str) -> usize {
        self.object(namespace, name)
            .and_then(|o| {
                o.pointer("/spec/capacityReservations")
                    .and_then(Value::as_array)
                    .map(Vec::len)
            })
            .unwrap_or(0)
    }

    /// Changes an object as another writer would, bumping its resourceVersion.
    pub fn edit(&self, namespace: &str, name: &str, edit: ObjectEdit) {
        let mut s = self.lock();
        edit_locked(&mut s, &(namespace.into(), name.into()), edit);
    }

    /// Runs `edit` right after the next GET of this object is answered.
    pub fn edit_after_next_get(&self, namespace: &str, name: &str, edit: ObjectEdit) {
        self.lock()
            .after_get
            .entry((namespace.into(), name.into()))
            .or_default()
            .push_back(edit);
    }

    /// The next request of `verb` (get, list, create, patch) meets `fault`.
    pub fn fault_next(&self, verb: &'static str, fault: Fault) {
        self.lock().faults.entry(verb).or_default().push_back(fault);
    }

    /// Faults queued for `verb` and not met yet.
    pub fn pending_faults(&self, verb: &str) -> usize {
        self.lock().faults.get(verb).map_or(0, VecDeque::len)
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Adds latency to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Requests served of a verb so far (`conflict`: PATCHes answered 409).
    pub fn count(&self, verb: &str) -> u64 {
        self.lock().counts.get(verb).copied().unwrap_or(0)
    }

    /// Patch bodies received so far (the last 1000).
    pub fn patches(&self) -> Vec<Value> {
        self.lock().patches.clone()
    }

    /// Fails every PATCH of this HRA with `code`, `after` a while, until [`ApiServer::heal`]
    /// (an admission webhook with `failurePolicy: Fail` that cannot be reached, or times out).
    pub fn fail_patches_of(&self, namespace: &str, name: &str, code: u16, after: Duration) {
        self.lock()
            .failing
            .insert((namespace.into(), name.into()), (code, after));
    }

    /// Ends every [`ApiServer::fail_patches_of`].
    pub fn heal(&self) {
        self.lock().failing.clear();
    }

    /// Answers 403 Forbidden to any request outside `namespaces`, cluster-wide ones included,
    /// as a namespaced Role allows.
    pub fn allow_only_namespaces(&self, namespaces: &[&str]) {
        self.lock().allowed_namespaces = Some(namespaces.iter().map(|n| n.to_string()).collect());
    }

    /// Holds (false) or lets go (true) the answers to LISTs of `plural` (a resource such as
    /// `runnerdeployments`), as when thousands of objects are still being listed.
    pub fn open_lists(&self, plural: &'static str, open: bool) {
        self.lock()
            .list_gates
            .entry(plural)
            .or_insert_with(|| watch::channel(true).0)
            .send_replace(open);
    }

    /// Sets how many objects one LIST answers at most (default [`DEFAULT_PAGE_SIZE`]).
    pub fn set_page_size(&self, size: usize) {
        self.lock().page_size = size.max(1);
    }

    /// Compacts the change history now, as etcd does: watches and continue tokens older than
    /// this moment are answered 410 Expired.
    pub fn compact(&self) {
        let mut s = self.lock();
        s.history.clear();
        for plural in PLURALS.into_iter().chain([LEASES]) {
            let revision = s.of(plural).revision() + 1;
            s.compacted.insert(plural, revision);
            s.list_compacted.insert(plural, revision);
        }
    }

    /// A stored Lease.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .leases
            .get(&(namespace.into(), name.into()))
            .cloned()
    }

    /// Forgets the request counts and patch bodies.
    pub fn reset_counts(&self) {
        let mut s = self.lock();
        s.counts.clear();
        s.patches.clear();
    }
}

fn edit_locked(s: &mut State, key: &Key, edit: ObjectEdit) {
    if let Ok(object) = s.objects.modify(key, edit) {
        record(s, PLURAL, "MODIFIED", &object);
    }
}
