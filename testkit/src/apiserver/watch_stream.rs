//! WATCH: the changes after a resourceVersion, then live ones, one JSON object per line.

use super::{routes::query_param, *};

/// A watch from `resourceVersion`: the changes after it, then live ones, one JSON object per
/// line, until `timeoutSeconds` or [`ApiServer::drop_watches`].
pub(super) fn watch_stream(
    state: &Mutex<State>,
    plural: &'static str,
    namespace: Option<&str>,
    query: &str,
) -> Reply {
    let since: u64 = query_param(query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = query_param(query, "timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(290u64);
    let s = state.lock().unwrap();
    if since > 0 && s.compacted.get(plural).is_some_and(|&gone| since < gone) {
        // What an API server sends for a resourceVersion older than its window.
        let line = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
            "status": "Failure", "reason": "Expired", "code": 410,
            "message": format!("too old resource version: {since}")}})
        .to_string()
            + "\n";
        let body = tokio_stream::once(Ok(Frame::data(Bytes::from(line))));
        return Reply::Watch(BodyExt::boxed(StreamBody::new(body)));
    }
    let live = BroadcastStream::new(s.changes.as_ref().unwrap().subscribe());
    let mut epoch = s.watch_epoch.as_ref().unwrap().subscribe();
    let mut held = s.watch_held.as_ref().unwrap().subscribe();
    let backlog: Vec<WatchEvent> = s
        .history
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.plural == plural && e.revision > since)
        .cloned()
        .collect();
    drop(s);
    let namespace = namespace.map(str::to_owned);
    let wanted = move |e: &WatchEvent| {
        e.plural == plural
            && e.revision > since
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
