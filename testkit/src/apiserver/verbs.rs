//! Each verb's answer, as a real kube-apiserver gives it for the objects we touch: `status`
//! written only through its subresource, `metadata.generation` counting spec changes, unknown
//! fields pruned by the CRD's structural schema, annotations capped at 256 KiB, LISTs paged
//! with `limit` and `continue` (410 once the continue token's revision is compacted), and
//! conditional updates (PUT) for Leases.

use super::{routes::query_param, schema::crd, *};

/// What every write of a custom resource goes through: pruning, and the annotation limit.
fn admit(plural: &str, object: &mut Value) -> Result<(), Reply> {
    if let Some(crd) = crd(plural) {
        crd.prune(object);
    }
    let bytes: usize = object["metadata"]["annotations"]
        .as_object()
        .map(|a| {
            a.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or(0);
    if bytes > ANNOTATIONS_LIMIT {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        return Err(status(
            422,
            "Invalid",
            format!(
                "{plural}.{GROUP} \"{name}\" is invalid: metadata.annotations: Too long: must have at most {ANNOTATIONS_LIMIT} bytes"
            ),
            name,
        ));
    }
    Ok(())
}

/// Most bytes of annotations (keys and values) an object may carry.
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

fn has_status_subresource(plural: &str) -> bool {
    crd(plural).is_some_and(|c| c.status_subresource)
}

pub(super) fn get(
    state: &Mutex<State>,
    plural: &'static str,
    namespace: &str,
    name: &str,
) -> Reply {
    let mut s = state.lock().unwrap();
    let key = (namespace.to_owned(), name.to_owned());
    let Some(object) = s.of(plural).get(&key).cloned() else {
        return not_found(plural, name);
    };
    if let Some(edit) = s.after_get.get_mut(&key).and_then(VecDeque::pop_front) {
        edit_locked(&mut s, &key, edit);
    }
    Reply::Json(StatusCode::OK, object)
}

/// A LIST, one page of at most `limit` (and the server's own page size) objects after the
/// `continue` token's key; the token names the revision the list started at.
pub(super) fn list(
    state: &Mutex<State>,
    plural: &'static str,
    namespace: Option<&str>,
    query: &str,
) -> Reply {
    let mut s = state.lock().unwrap();
    let page = s.page_size;
    let limit = query_param(query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .map_or(page, |l| l.min(page));
    let token = query_param(query, "continue").filter(|c| !c.is_empty());
    let (revision, after) = match token.map(parse_continue) {
        None => (s.of(plural).revision(), None),
        Some(Some((revision, key))) => (revision, Some(key)),
        Some(None) => return status(400, "BadRequest", "invalid continue token".into(), ""),
    };
    if token.is_some()
        && s.list_compacted
            .get(plural)
            .is_some_and(|&gone| revision < gone)
    {
        return status(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter."
                .into(),
            "",
        );
    }
    let objects = s.of(plural);
    let mut items: Vec<&Value> = objects
        .list(namespace)
        .filter(|o| after.as_ref().is_none_or(|a| key_of(o) > *a))
        .take(limit + 1)
        .collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let next = more.then(|| {
        let (ns, name) = key_of(items[items.len() - 1]);
        format!("{revision}.{ns}.{name}")
    });
    Reply::Json(
        StatusCode::OK,
        json!({
            "apiVersion": format!("{GROUP}/{VERSION}"), "kind": "List",
            "metadata": {"resourceVersion": revision.to_string(), "continue": next},
            "items": items,
        }),
    )
}

/// `REVISION.NAMESPACE.NAME` of a continue token (a namespace has no dots; a name may).
fn parse_continue(token: &str) -> Option<(u64, ObjectKey)> {
    let mut parts = token.splitn(3, '.');
    let revision = parts.next()?.parse().ok()?;
    let namespace = parts.next()?.to_owned();
    let name = parts.next()?.to_owned();
    Some((revision, (namespace, name)))
}

pub(super) fn delete(
    state: &Mutex<State>,
    plural: &'static str,
    namespace: &str,
    name: &str,
) -> Reply {
    let mut s = state.lock().unwrap();
    match s
        .of(plural)
        .remove(&(namespace.to_owned(), name.to_owned()))
    {
        Some(object) => {
            record(&mut s, plural, "DELETED", &object);
            Reply::Json(StatusCode::OK, object)
        }
        None => not_found(plural, name),
    }
}

pub(super) fn create(
    state: &Mutex<State>,
    plural: &'static str,
    namespace: &str,
    body: &[u8],
) -> Reply {
    let Ok(mut object) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "body is not JSON".into(), "");
    };
    object["metadata"]["namespace"] = json!(namespace);
    if has_status_subresource(plural)
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    if let Err(reply) = admit(plural, &mut object) {
        return reply;
    }
    if crd(plural).is_some() {
        object["metadata"]["generation"] = json!(1);
    }
    // The server stamps when an object was created, whatever the client said.
    object["metadata"]["creationTimestamp"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let key = key_of(&object);
    let mut s = state.lock().unwrap();
    match s.of(plural).create(object) {
        Ok(stored) => {
            record(&mut s, plural, "ADDED", &stored);
            Reply::Json(StatusCode::CREATED, stored)
        }
        Err(ObjectError::AlreadyExists) => status(
            409,
            "AlreadyExists",
            format!("{plural} \"{}\" already exists", key.1),
            &key.1,
        ),
        Err(e) => status(422, "Invalid", e.to_string(), &key.1),
    }
}

/// The write a main-resource PATCH or PUT makes of `next`: `status` kept as it was (it has
/// its own subresource), `generation` bumped if the spec changed, unknown fields pruned.
fn main_resource_write(plural: &str, current: &Value, next: &mut Value) -> Result<(), Reply> {
    if has_status_subresource(plural) {
        match current.get("status") {
            Some(status) => next["status"] = status.clone(),
            None => {
                if let Some(map) = next.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    admit(plural, next)?;
    if crd(plural).is_some() {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        let changed = next.get("spec") != current.get("spec");
        next["metadata"]["generation"] = json!(generation + i64::from(changed));
    }
    Ok(())
}

/// A JSON merge patch of the main resource, or (`status_only`) of its `status` subresource,
/// which takes nothing but `status` from the patch.
#[allow(clippy::too_many_arguments)]
pub(super) fn patch(
    state: &Mutex<State>,
    plural: &'static str,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
    dry_run: bool,
    status_only: bool,
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
    if s.patches.len() >= PATCHES_KEPT {
        s.patches.remove(0);
    }
    s.patches.push(patch.clone());
    let key = (namespace.to_owned(), name.to_owned());
    let Some(current) = s.of(plural).get(&key).cloned() else {
        return not_found(plural, name);
    };
    // The whole object the patch asks for, as the API server computes it before admission.
    let mut next = current.clone();
    if status_only {
        if let Some(status) = patch.get("status") {
            json_patch::merge(&mut next["status"], status);
        }
    } else {
        json_patch::merge(&mut next, &patch);
        if let Err(reply) = main_resource_write(plural, &current, &mut next) {
            return reply;
        }
    }
    if let Some(planned) = patch.pointer("/metadata/resourceVersion") {
        next["metadata"]["resourceVersion"] = planned.clone();
    } else {
        next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    }
    write_back(&mut s, plural, &key, next, dry_run)
}

/// A PUT (update) of the main resource: conditional on `metadata.resourceVersion` when the
/// body carries one.
pub(super) fn update(
    state: &Mutex<State>,
    plural: &'static str,
    namespace: &str,
    name: &str,
    body: &[u8],
) -> Reply {
    let Ok(mut next) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "body is not JSON".into(), name);
    };
    let mut s = state.lock().unwrap();
    let key = (namespace.to_owned(), name.to_owned());
    let Some(current) = s.of(plural).get(&key).cloned() else {
        return not_found(plural, name);
    };
    if let Err(reply) = main_resource_write(plural, &current, &mut next) {
        return reply;
    }
    write_back(&mut s, plural, &key, next, false)
}

/// Stores `next` (its `metadata.resourceVersion` is the precondition) and records the change.
fn write_back(
    s: &mut State,
    plural: &'static str,
    key: &ObjectKey,
    next: Value,
    dry_run: bool,
) -> Reply {
    let name = key.1.clone();
    match s.of(plural).update(key, next, dry_run) {
        Ok(patched) => {
            if patched.changed {
                record(s, plural, "MODIFIED", &patched.object);
            }
            Reply::Json(StatusCode::OK, patched.object)
        }
        Err(ObjectError::NotFound) => not_found(plural, &name),
        Err(ObjectError::Conflict { .. }) => {
            if plural == PLURAL {
                *s.counts.entry("conflict").or_default() += 1;
            }
            let message = format!(
                "Operation cannot be fulfilled on {plural}.{GROUP} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            );
            status(409, "Conflict", message, &name)
        }
        // What many API servers answer when etcd refuses the object's size.
        Err(e @ ObjectError::TooLarge { .. }) => status(500, "", e.to_string(), &name),
        Err(e) => status(
            422,
            "Invalid",
            format!("{plural}.{GROUP} \"{name}\" is invalid: {e}"),
            &name,
        ),
    }
}
