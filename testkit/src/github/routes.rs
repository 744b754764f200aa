//! The fake's request handling: authentication, forced answers and rate limits first, then
//! the endpoint.

use super::{APP_KEY, Delivery, Logged, State};
use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{HeaderMap, Method, StatusCode},
    response::Response,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use parking_lot::Mutex;
use ring::signature;
use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};
use std::{net::SocketAddr, sync::Arc};

pub(super) fn router(state: Arc<Mutex<State>>, addr: SocketAddr) -> Router {
    Router::new().fallback(move |req: Request| {
        let state = state.clone();
        async move { handle(state, addr, req).await }
    })
}

fn answer(
    status: u16,
    headers: &[(String, String)],
    body: Value,
) -> (u16, Vec<(String, String)>, String) {
    (status, headers.to_vec(), body.to_string())
}

async fn handle(state: Arc<Mutex<State>>, addr: SocketAddr, req: Request) -> Response {
    let delay = state.lock().delay;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let (status, headers, body) = {
        let mut s = state.lock();
        let (status, mut headers, body) =
            respond(&mut s, addr, &method, &path, &query, req.headers());
        if let Some(remaining) = s.rate_remaining {
            headers.push(("x-ratelimit-remaining".into(), remaining.to_string()));
            headers.push(("x-ratelimit-limit".into(), "5000".into()));
            if let Some(reset) = s.rate_reset {
                headers.push(("x-ratelimit-reset".into(), reset.to_string()));
            }
        }
        s.log.push(Logged {
            method: method.to_string(),
            path,
            query,
            status,
            at: tokio::time::Instant::now(),
        });
        (status, headers, body)
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json; charset=utf-8");
    for (k, v) in headers {
        response = response.header(k, v);
    }
    response.body(Body::from(body)).unwrap()
}

fn public_key() -> Vec<u8> {
    let pem = std::fs::read(APP_KEY).unwrap();
    let key = match PrivateKeyDer::from_pem_slice(&pem).unwrap() {
        PrivateKeyDer::Pkcs1(k) => signature::RsaKeyPair::from_der(k.secret_pkcs1_der()).unwrap(),
        PrivateKeyDer::Pkcs8(k) => signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).unwrap(),
        _ => panic!("an RSA key"),
    };
    key.public().as_ref().to_vec()
}

/// The App id a valid, unexpired JWT was issued by.
fn jwt_issuer(token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (h, c, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header["alg"] != "RS256" {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key())
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let now = Utc::now().timestamp();
    let (iat, exp) = (claims["iat"].as_i64()?, claims["exp"].as_i64()?);
    // GitHub refuses a JWT that expires more than ten minutes after it was issued.
    if exp <= now || iat > now + 60 || exp - iat > 600 {
        return None;
    }
    claims["iss"].as_str()?.parse().ok()
}

fn respond(
    s: &mut State,
    addr: SocketAddr,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> (u16, Vec<(String, String)>, String) {
    if let Some(forced) = s.forced.pop_front() {
        return (forced.status, forced.headers, forced.body);
    }
    if let Some(remaining) = s.rate_remaining {
        if remaining == 0 {
            return answer(
                403,
                &[],
                json!({"message": "API rate limit exceeded for installation."}),
            );
        }
        s.rate_remaining = Some(remaining - 1);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let bad = || answer(401, &[], json!({"message": "Bad credentials"}));
    let not_found = || answer(404, &[], json!({"message": "Not Found"}));
    if path.starts_with("/app/") {
        let Some(iss) = jwt_issuer(&bearer) else {
            return bad();
        };
        if s.app.map(|(id, _)| id) != Some(iss) {
            return bad();
        }
    } else {
        let now = Utc::now();
        let installation = s
            .installation_tokens
            .get(&bearer)
            .is_some_and(|exp| *exp > now);
        if !installation && !s.tokens.contains(&bearer) {
            return bad();
        }
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["app", "installations", id, "access_tokens"]) => {
            if s.app.map(|(_, inst)| inst.to_string()) != Some(id.to_string()) {
                return not_found();
            }
            s.exchanges += 1;
            let token = format!("ghs_fake{}", s.exchanges);
            let expires = Utc::now() + s.token_life.unwrap_or(chrono::TimeDelta::hours(1));
            s.installation_tokens.insert(token.clone(), expires);
            answer(
                201,
                &[],
                json!({"token": token, "expires_at": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "permissions": {"actions": "read", "organization_hooks": "read"}}),
            )
        }
        (&Method::GET, ["repos", owner, repo, "actions", "jobs", job]) => {
            match s.jobs.get(&(format!("{owner}/{repo}"), job.to_string())) {
                Some(status) => answer(
                    200,
                    &[],
                    json!({"id": job.parse::<u64>().unwrap_or(0), "status": status,
                    "conclusion": if status == "completed" { json!("success") } else { Value::Null }}),
                ),
                None => not_found(),
            }
        }
        (&Method::GET, [.., "deliveries"]) => list(s, addr, path, query),
        (&Method::GET, [.., "deliveries", id]) => {
            let hook = path.rsplit_once('/').map(|(h, _)| h).unwrap_or_default();
            let found = s
                .deliveries
                .get(hook)
                .and_then(|all| all.iter().find(|d| d.id.to_string() == *id));
            match found {
                Some(d) => {
                    let mut body = summary(d);
                    body["request"] = json!({"headers": {"X-GitHub-Event": d.event, "X-GitHub-Delivery": d.guid},
                        "payload": d.payload});
                    body["response"] = json!({"headers": {}, "payload": ""});
                    answer(200, &[], body)
                }
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn summary(d: &Delivery) -> Value {
    json!({
        "id": d.id, "guid": d.guid, "delivered_at": d.delivered_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "redelivery": d.redelivery, "duration": 0.27,
        "status": if (200..300).contains(&d.status_code) { "OK" } else { "failed to connect to host" },
        "status_code": d.status_code, "event": d.event, "action": d.action,
        "installation_id": null, "repository_id": null, "throttled_at": null,
    })
}

fn list(
    s: &State,
    addr: SocketAddr,
    path: &str,
    query: &str,
) -> (u16, Vec<(String, String)>, String) {
    let Some(all) = s.deliveries.get(path) else {
        return answer(404, &[], json!({"message": "Not Found"}));
    };
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let per_page: usize = param("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .min(100);
    // The cursor is opaque to clients: here `v1_<id>` percent-encoded, "older than <id>".
    let before: Option<u64> = param("cursor")
        .map(|c| c.replace("%5F", "_").replace("%3D", "="))
        .and_then(|c| {
            c.strip_prefix("v1_")
                .and_then(|n| n.trim_end_matches('=').parse().ok())
        });
    let page: Vec<&Delivery> = all
        .iter()
        .rev()
        .filter(|d| before.is_none_or(|b| d.id < b))
        .take(per_page)
        .collect();
    let mut headers = Vec::new();
    if let Some(last) = page.last()
        && all.iter().any(|d| d.id < last.id)
    {
        let next = format!("v1_{}%3D", last.id);
        headers.push((
            "link".to_owned(),
            format!("<http://{addr}{path}?per_page={per_page}&cursor={next}>; rel=\"next\", <http://{addr}{path}?per_page={per_page}>; rel=\"first\""),
        ));
    }
    let body: Vec<Value> = page.into_iter().map(summary).collect();
    answer(200, &headers, Value::Array(body))
}
