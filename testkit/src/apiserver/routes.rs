//! The HTTP side: routing requests to verbs, and each verb's answer.

use super::{
    verbs::{create, delete, get, list, patch, update},
    watch_stream::watch_stream,
    *,
};

pub(super) async fn handle(
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
    // (plural, namespace, name, the status subresource)
    let resource = match seg.as_slice() {
        ["apis", GROUP, VERSION, plural] => Some((*plural, None, None, false)),
        ["apis", GROUP, VERSION, "namespaces", ns, plural] => {
            Some((*plural, Some(*ns), None, false))
        }
        ["apis", GROUP, VERSION, "namespaces", ns, plural, name] => {
            Some((*plural, Some(*ns), Some(*name), false))
        }
        [
            "apis",
            GROUP,
            VERSION,
            "namespaces",
            ns,
            plural,
            name,
            "status",
        ] => Some((*plural, Some(*ns), Some(*name), true)),
        ["apis", COORDINATION, "v1", LEASES] => Some((LEASES, None, None, false)),
        ["apis", COORDINATION, "v1", "namespaces", ns, LEASES] => {
            Some((LEASES, Some(*ns), None, false))
        }
        ["apis", COORDINATION, "v1", "namespaces", ns, LEASES, name] => {
            Some((LEASES, Some(*ns), Some(*name), false))
        }
        _ => None,
    };
    let absent = state.lock().unwrap().absent.clone();
    let resource = resource.and_then(|(p, ns, name, sub)| {
        let plural = PLURALS
            .into_iter()
            .chain([LEASES])
            .find(|known| *known == p && !absent.contains(known))?;
        Some((plural, ns, name, sub))
    });
    let (plural, namespace, name, status_only) = match resource {
        Some(resource) => resource,
        None => {
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
        (&Method::PUT, Some(_)) => "update",
        (&Method::DELETE, Some(_)) => "delete",
        _ => {
            return status(
                405,
                "MethodNotAllowed",
                format!("{method} is not supported here"),
                "",
            );
        }
    };
    if let Some(reply) = forbidden(state, plural, verb, namespace) {
        return reply;
    }
    // Counts and faults are the HRAs' (the service's own traffic); runner objects are served
    // plainly.
    let fault = if plural == PLURAL {
        let mut s = state.lock().unwrap();
        *s.counts.entry(verb).or_default() += 1;
        s.faults.get_mut(verb).and_then(VecDeque::pop_front)
    } else {
        None
    };
    if let Some(Fault::Status(code)) = fault {
        let reason = if code == 503 {
            "ServiceUnavailable"
        } else {
            "InternalError"
        };
        return status(code, reason, format!("injected {code}"), name.unwrap_or(""));
    }
    if namespace.is_none() && !matches!(verb, "list" | "watch") {
        return status(
            404,
            "NotFound",
            "a namespaced resource needs a namespace".into(),
            "",
        );
    }
    let dry_run = query.split('&').any(|p| p == "dryRun=All");
    let failing = (verb == "patch" && plural == PLURAL)
        .then(|| {
            let key = (
                namespace.unwrap_or("").to_owned(),
                name.unwrap_or("").to_owned(),
            );
            state.lock().unwrap().failing.get(&key).copied()
        })
        .flatten();
    if let Some((code, after)) = failing {
        tokio::time::sleep(after).await;
        let message = "Internal error occurred: failed calling webhook \"validate.example.com\": \
                       connect: connection refused";
        return status(code, "InternalError", message.into(), name.unwrap_or(""));
    }
    if verb == "list" {
        let gate = state
            .lock()
            .unwrap()
            .list_gates
            .get(plural)
            .map(|g| g.subscribe());
        if let Some(mut gate) = gate {
            let _ = gate.wait_for(|open| *open).await;
        }
    }
    let (ns, name) = (namespace.unwrap_or(""), name.unwrap_or(""));
    match verb {
        "get" => get(state, plural, ns, name),
        "list" => list(state, plural, namespace, query),
        "watch" => watch_stream(state, plural, namespace, query),
        "create" => create(state, plural, ns, body),
        "delete" => delete(state, plural, ns, name),
        "update" => update(state, plural, ns, name, body),
        _ => {
            let reply = patch(
                state,
                plural,
                ns,
                name,
                content_type,
                body,
                dry_run,
                status_only,
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

/// 403, as the API server answers a request its Role does not allow.
fn forbidden(
    state: &Mutex<State>,
    plural: &'static str,
    verb: &str,
    namespace: Option<&str>,
) -> Option<Reply> {
    let s = state.lock().unwrap();
    let allowed = s.allowed_namespaces.as_ref()?;
    if namespace.is_some_and(|ns| allowed.iter().any(|a| a == ns)) {
        return None;
    }
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".into(),
    };
    let message = format!(
        "{plural}.{GROUP} is forbidden: User \"system:serviceaccount:batch-scaler:batch-scaler\" \
         cannot {verb} resource \"{plural}\" in API group \"{GROUP}\" {scope}"
    );
    Some(status(403, "Forbidden", message, ""))
}

pub(super) fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
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
                crd,
            ],
        ) if PLURALS.iter().any(|p| *crd == format!("{p}.{GROUP}")) => Some(Reply::Json(
            StatusCode::OK,
            json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": crd}, "spec": {"group": GROUP},
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
        ) => Some(status(409, "AlreadyExists", "already exists".into(), "")),
        _ => None,
    }
}
