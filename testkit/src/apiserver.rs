//! A small Kubernetes API server for the HorizontalRunnerAutoscaler CRD, on 127.0.0.1:0,
//! faithful enough that `kube::Client` cannot tell: GET, LIST, WATCH, POST, merge PATCH
//! (RFC 7386) with resourceVersion preconditions, `Status` bodies for 404/409/422,
//! `?dryRun=All`, and hooks to inject faults and latency and to count requests by verb.
//! Objects are kept by the service's own [`Objects`] (the memory store's code) and checked
//! against the same schema. It also answers what a test needs of a real cluster: creating
//! namespaces and looking up / installing the CRD.

use batch_scaler::store::{
    objects::{ObjectError, ObjectKey, Objects, key_of},
    resource::{GROUP, PLURAL, VERSION, hra_schema},
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
    collections::{HashMap, VecDeque},
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
    latency: Duration,
    faults: HashMap<&'static str, VecDeque<Fault>>,
    after_get: HashMap<Key, VecDeque<ObjectEdit>>,
    counts: HashMap<&'static str, u64>,
    patches: Vec<Value>,
    /// Every change, for watches resuming from a resourceVersion.
    history: Vec<WatchEvent>,
    changes: Option<broadcast::Sender<WatchEvent>>,
    /// Bumped to end every open watch stream.
    watch_epoch: Option<watch::Sender<u64>>,
    /// While true, watch streams deliver nothing (a lagging watch).
    watch_held: Option<watch::Sender<bool>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            objects: Objects::new(hra_schema),
            latency: Duration::ZERO,
            faults: HashMap::new(),
            after_get: HashMap::new(),
            counts: HashMap::new(),
            patches: Vec::new(),
            history: Vec::new(),
            changes: None,
            watch_epoch: None,
            watch_held: None,
        }
    }
}

#[derive(Clone)]
struct WatchEvent {
    revision: u64,
    kind: &'static str,
    object: Value,
}

/// Records a change for watchers (the object carries its new resourceVersion).
fn record(s: &mut State, kind: &'static str, object: &Value) {
    let event = WatchEvent {
        revision: s.objects.revision(),
        kind,
        object: object.clone(),
    };
    s.history.push(event.clone());
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

fn not_found(name: &str) -> Reply {
    status(
        404,
        "NotFound",
        format!("{PLURAL}.{GROUP} \"{name}\" not found"),
        name,
    )
}

impl ApiServer {
    /// Starts a server with no objects.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            changes: Some(broadcast::channel(65_536).0),
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

    /// Stores an object as POST would (namespace `default` if none).
    pub fn insert(&self, object: Value) {
        let mut s = self.lock();
        let stored = s.objects.put(object).expect("a valid HRA object");
        record(&mut s, "ADDED", &stored);
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

    /// Adds latency to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Requests served of a verb so far (`conflict`: PATCHes answered 409).
    pub fn count(&self, verb: &str) -> u64 {
        self.lock().counts.get(verb).copied().unwrap_or(0)
    }

    /// Patch bodies received so far.
    pub fn patches(&self) -> Vec<Value> {
        self.lock().patches.clone()
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
        record(s, "MODIFIED", &object);
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let latency = state.lock().unwrap().latency;
    tokio::time::sleep(latency).await;
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let segments: Vec<String> = parts
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect();
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let reply = route(
        &state,
        &parts.method,
        &segments,
        &query,
        &content_type,
        &body,
    )
    .await;
    match reply {
        Reply::Drop => Err(std::io::Error::other("connection dropped on purpose")),
        Reply::Watch(body) => Ok(Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(body)
            .unwrap()),
        Reply::Json(code, value) => Ok(Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(value.to_string()))
                    .map_err(|e| match e {})
                    .boxed(),
            )
            .unwrap()),
    }
}

async fn route(
    state: &Mutex<State>,
    method: &Method,
    segments: &[String],
    query: &str,
    content_type: &str,
    body: &[u8],
) -> Reply {
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let Some(reply) = cluster_route(method, &seg, body) {
        return reply;
    }
    let (namespace, name) = match seg.as_slice() {
        ["apis", GROUP, VERSION, PLURAL] => (None, None),
        ["apis", GROUP, VERSION, "namespaces", ns, PLURAL] => (Some(*ns), None),
        ["apis", GROUP, VERSION, "namespaces", ns, PLURAL, name] => (Some(*ns), Some(*name)),
        _ => {
            return status(
                404,
                "NotFound",
                format!(
                    "the server could not find the requested resource ({})",
                    seg.join("/")
                ),
                "",
            );
        }
    };
    let verb: &'static str = match (method, name) {
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None)
            if query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1") =>
        {
            "watch"
        }
        (&Method::GET, None) => "list",
        (&Method::POST, None) => "create",
        (&Method::PATCH, Some(_)) => "patch",
        _ => {
            return status(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported here"),
                "",
            );
        }
    };
    let fault = {
        let mut s = state.lock().unwrap();
        *s.counts.entry(verb).or_default() += 1;
        s.faults.get_mut(verb).and_then(VecDeque::pop_front)
    };
    if let Some(Fault::Status(code)) = fault {
        let reason = if code == 503 {
            "ServiceUnavailable"
        } else {
            "InternalError"
        };
        return status(code, reason, format!("injected {code}"), name.unwrap_or(""));
    }
    let dry_run = query.split('&').any(|p| p == "dryRun=All");
    match verb {
        "get" => get(state, namespace.unwrap(), name.unwrap()),
        "list" => list(state, namespace),
        "watch" => watch_stream(state, namespace, query),
        "create" => create(state, namespace.unwrap(), body),
        _ => {
            let reply = patch(
                state,
                namespace.unwrap(),
                name.unwrap(),
                content_type,
                body,
                dry_run,
            );
            match (fault, &reply) {
                (Some(Fault::ApplyThenDrop), Reply::Json(StatusCode::OK, _)) => Reply::Drop,
                (Some(Fault::ApplyThenStall(d)), _) => {
                    tokio::time::sleep(d).await;
                    reply
                }
                _ => reply,
            }
        }
    }
}

fn get(state: &Mutex<State>, namespace: &str, name: &str) -> Reply {
    let mut s = state.lock().unwrap();
    let key = (namespace.to_owned(), name.to_owned());
    let Some(object) = s.objects.get(&key).cloned() else {
        return not_found(name);
    };
    if let Some(edit) = s.after_get.get_mut(&key).and_then(VecDeque::pop_front) {
        edit_locked(&mut s, &key, edit);
    }
    Reply::Json(StatusCode::OK, object)
}

fn list(state: &Mutex<State>, namespace: Option<&str>) -> Reply {
    let s = state.lock().unwrap();
    let items: Vec<Value> = s.objects.list(namespace).cloned().collect();
    Reply::Json(
        StatusCode::OK,
        json!({
            "apiVersion": format!("{GROUP}/{VERSION}"), "kind": "HorizontalRunnerAutoscalerList",
            "metadata": {"resourceVersion": s.objects.revision().to_string()}, "items": items,
        }),
    )
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// A watch from `resourceVersion`: the changes after it, then live ones, one JSON object per
/// line, until `timeoutSeconds` or [`ApiServer::drop_watches`].
fn watch_stream(state: &Mutex<State>, namespace: Option<&str>, query: &str) -> Reply {
    let since: u64 = query_param(query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = query_param(query, "timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(290u64);
    let s = state.lock().unwrap();
    let live = BroadcastStream::new(s.changes.as_ref().unwrap().subscribe());
    let mut epoch = s.watch_epoch.as_ref().unwrap().subscribe();
    let mut held = s.watch_held.as_ref().unwrap().subscribe();
    let backlog: Vec<WatchEvent> = s
        .history
        .iter()
        .filter(|e| e.revision > since)
        .cloned()
        .collect();
    drop(s);
    let namespace = namespace.map(str::to_owned);
    let wanted = move |e: &WatchEvent| {
        e.revision > since
            && namespace
                .as_ref()
                .is_none_or(|ns| e.object["metadata"]["namespace"] == ns.as_str())
    };
    let mut events = Box::pin(
        tokio_stream::iter(backlog)
            .chain(live.filter_map(Result::ok))
            .filter(wanted),
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1024);
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                () = &mut deadline => None,
                _ = epoch.changed() => None,
            };
            let Some(e) = event else { break };
            while *held.borrow_and_update() {
                if held.changed().await.is_err() {
                    return;
                }
            }
            let line = json!({"type": e.kind, "object": e.object}).to_string() + "\n";
            if tx.send(Ok(Frame::data(Bytes::from(line)))).await.is_err() {
                break;
            }
        }
    });
    let events = tokio_stream::wrappers::ReceiverStream::new(rx);
    Reply::Watch(BodyExt::boxed(StreamBody::new(events)))
}

fn create(state: &Mutex<State>, namespace: &str, body: &[u8]) -> Reply {
    let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "body is not JSON".into(), "");
    };
    object["metadata"]["namespace"] = json!(namespace);
    let key = key_of(&object);
    let mut s = state.lock().unwrap();
    match s.objects.create(object) {
        Ok(stored) => {
            record(&mut s, "ADDED", &stored);
            Reply::Json(StatusCode::CREATED, stored)
        }
        Err(ObjectError::AlreadyExists) => status(
            409,
            "AlreadyExists",
            format!("{PLURAL}.{GROUP} \"{}\" already exists", key.1),
            &key.1,
        ),
        Err(e) => status(422, "Invalid", e.to_string(), &key.1),
    }
}

fn patch(
    state: &Mutex<State>,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
    dry_run: bool,
) -> Reply {
    if !content_type.starts_with("application/merge-patch+json") {
        return status(
            415,
            "UnsupportedMediaType",
            format!("unsupported patch type {content_type:?}"),
            name,
        );
    }
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "patch is not JSON".into(), name);
    };
    let mut s = state.lock().unwrap();
    s.patches.push(patch.clone());
    let key = (namespace.to_owned(), name.to_owned());
    match s.objects.patch(&key, &patch, dry_run) {
        Ok(patched) => {
            if patched.changed {
                record(&mut s, "MODIFIED", &patched.object);
            }
            Reply::Json(StatusCode::OK, patched.object)
        }
        Err(ObjectError::NotFound) => not_found(name),
        Err(ObjectError::Conflict { .. }) => {
            *s.counts.entry("conflict").or_default() += 1;
            let message = format!(
                "Operation cannot be fulfilled on {PLURAL}.{GROUP} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            );
            status(409, "Conflict", message, name)
        }
        Err(e) => status(
            422,
            "Invalid",
            format!("HorizontalRunnerAutoscaler.{GROUP} \"{name}\" is invalid: {e}"),
            name,
        ),
    }
}

/// What a test helper asks of a cluster besides HRAs: namespaces and the CRD.
fn cluster_route(method: &Method, seg: &[&str], body: &[u8]) -> Option<Reply> {
    let created = |body: &[u8]| {
        let object = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        Reply::Json(StatusCode::CREATED, object)
    };
    match (method, seg) {
        (&Method::POST, ["api", "v1", "namespaces"]) => Some(created(body)),
        (
            &Method::GET,
            [
                "apis",
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                CRD_NAME,
            ],
        ) => Some(Reply::Json(
            StatusCode::OK,
            json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": CRD_NAME}, "spec": {"group": GROUP},
                "status": {"conditions": [{"type": "Established", "status": "True"}]},
            }),
        )),
        (
            &Method::POST,
            [
                "apis",
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
            ],
        ) => Some(status(
            409,
            "AlreadyExists",
            format!("{CRD_NAME} already exists"),
            CRD_NAME,
        )),
        _ => None,
    }
}
