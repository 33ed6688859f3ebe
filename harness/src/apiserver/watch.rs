//! Watch streams: where a watch starts (synthetic ADDED, a revision, or an in-stream 410),
//! then a loop that forwards the replica cache's events, bookmarks and the deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use http::Response;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::body::{json_stream_response, Body};
use super::error::ApiError;
use super::query::{list_options_invalid, Query, RvMatch};
use super::resource::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{EventType, StoreEvent};
use super::{partial, table, ApiServer, WatchControl};

/// A validated watch request.
#[derive(Debug, Clone)]
pub(super) struct WatchRequest {
    res: usize,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    rv: Option<u64>,
    timeout: Option<Duration>,
    bookmarks: bool,
    initial_events: bool,
    /// `as=Table`: events carry one-row Tables of this type (with whole objects?).
    pub(super) table: Option<(ResourceType, bool)>,
    /// `as=PartialObjectMetadata`: events carry metadata only, in this `meta.k8s.io` version.
    pub(super) partial: Option<String>,
}

impl WatchRequest {
    pub(super) fn parse(
        res: usize,
        kind: &str,
        ns: Option<String>,
        q: &Query,
    ) -> Result<Self, ApiError> {
        let (labels, fields) = q.selectors(kind)?;
        let rv = q.resource_version()?;
        let rv_match = q.rv_match()?;
        let initial_events = q.bool("sendInitialEvents")?;
        let bookmarks = q.bool("allowWatchBookmarks")?;
        if initial_events && rv_match != RvMatch::NotOlderThan {
            return Err(list_options_invalid("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan"));
        }
        if initial_events && !bookmarks {
            return Err(list_options_invalid(
                "allowWatchBookmarks",
                "Forbidden: allowWatchBookmarks must be true when sendInitialEvents is set",
            ));
        }
        if !initial_events && rv_match != RvMatch::Unset {
            return Err(list_options_invalid("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"));
        }
        let timeout = q.timeout_seconds()?.map(Duration::from_secs);
        Ok(Self {
            res,
            ns,
            labels,
            fields,
            rv,
            timeout,
            bookmarks,
            initial_events,
            table: None,
            partial: None,
        })
    }

    fn matches(&self, ev: &StoreEvent) -> bool {
        ev.key.res == self.res && self.ns.as_ref().is_none_or(|ns| *ns == ev.key.ns)
    }

    fn selects(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches_object(obj)
    }

    /// The event this watcher sees for a store event: selector transitions turn MODIFIED into
    /// ADDED (moved in) or DELETED (moved out), as kube-apiserver's watch filtering does.
    fn translate(&self, ev: &StoreEvent) -> Option<(EventType, Arc<Value>)> {
        if !self.matches(ev) {
            return None;
        }
        let now_in = self.selects(&ev.object);
        let was_in = ev.prev.as_ref().is_some_and(|p| self.selects(p));
        let kind = match (ev.kind, was_in, now_in) {
            (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Deleted, _, false) => return None,
            (EventType::Added, _, true) => EventType::Added,
            (_, true, true) => EventType::Modified,
            (_, false, true) => EventType::Added,
            (_, true, false) => EventType::Deleted,
            (_, false, false) => return None,
        };
        Some((kind, ev.object.clone()))
    }
}

/// Where a watch begins.
enum Start {
    /// Synthetic ADDED for `objects` (then maybe the initial-events-end bookmark), then
    /// changes after `cursor`.
    Initial {
        objects: Vec<Arc<Value>>,
        cursor: u64,
    },
    /// Changes after `cursor`.
    From { cursor: u64 },
    /// The requested revision left the window: one in-stream 410, then close.
    TooOld { requested: u64, window_start: u64 },
}

impl WatchRequest {
    /// The line of one event: the object, or its one-row Table.
    fn line(&self, kind: &str, obj: &Value, now: Duration) -> Bytes {
        if let Some(version) = &self.partial {
            return watch_event_line(kind, &partial::object(obj, version));
        }
        match &self.table {
            None => watch_event_line(kind, obj),
            Some((ty, include)) => {
                let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                watch_event_line(kind, &table::render(ty, &[obj], meta, *include, now))
            }
        }
    }
}

/// The line the server writes on a watch stream for one event: `{"type":…,"object":…}` and a
/// newline. `type` comes first, as kube-apiserver writes it (Go's `metav1.WatchEvent` field
/// order): a decoder of an adjacently tagged event (kube's `WatchEvent`) then reads the object
/// straight into its type instead of buffering it until the tag. The object is borrowed.
pub fn watch_event_line(kind: &str, object: &Value) -> Bytes {
    #[derive(Serialize)]
    struct Event<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        object: &'a Value,
    }
    let mut line = serde_json::to_vec(&Event { kind, object }).expect("JSON serialises");
    line.push(b'\n');
    Bytes::from(line)
}

impl ApiServer {
    /// `GET` on a collection with `watch`: HTTP 200 at once, then a stream fed by a task on
    /// the replica's host until the deadline (`timeoutSeconds`, else a random one).
    pub(super) async fn watch(
        &self,
        replica: usize,
        w: WatchRequest,
    ) -> Result<Response<Body>, ApiError> {
        let start = self.watch_start(replica, &w).await?;
        let id = self.open_watch();
        let lifetime = match w.timeout {
            Some(t) => t,
            None => self
                .config()
                .min_request_timeout
                .mul_f64(1.0 + self.random_fraction()),
        };
        let (tx, rx) = mpsc::channel::<Bytes>(256);
        let server = self.clone();
        tokio::spawn(async move { server.stream(replica, id, w, start, lifetime, tx).await });
        let body = stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
        });
        Ok(json_stream_response(StreamBody::new(body).boxed_unsync()))
    }

    async fn watch_start(&self, replica: usize, w: &WatchRequest) -> Result<Start, ApiError> {
        let initial = w.initial_events || matches!(w.rv, None | Some(0));
        if let Some(n) = w.rv.filter(|n| *n > 0) {
            self.wait_for_cache(replica, n).await?;
        }
        Ok(self.with_cache(replica, |cache, _| {
            if initial {
                let objects = cache
                    .list(w.res, w.ns.as_deref())
                    .into_iter()
                    .filter(|o| w.selects(o))
                    .collect();
                return Start::Initial {
                    objects,
                    cursor: cache.synced(),
                };
            }
            let n = w.rv.expect("non-initial watches have a revision");
            if n < cache.window_start() {
                return Start::TooOld {
                    requested: n,
                    window_start: cache.window_start(),
                };
            }
            Start::From { cursor: n }
        }))
    }

    async fn send(&self, replica: usize, id: u64, tx: &mpsc::Sender<Bytes>, line: Bytes) -> bool {
        if self.config().access_log {
            let t = self.now();
            self.log_access(t, replica, || {
                format!(
                    "watch#{id} {}",
                    String::from_utf8_lossy(line.trim_ascii_end())
                )
            });
        }
        tx.send(line).await.is_ok()
    }

    fn bookmark(&self, w: &WatchRequest, rev: u64, initial_end: bool) -> Bytes {
        let ty = self.resource(w.res);
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": ty.kind, "apiVersion": ty.api_version(), "metadata": meta});
        match &w.partial {
            Some(version) => watch_event_line("BOOKMARK", &partial::object(&obj, version)),
            None => watch_event_line("BOOKMARK", &obj),
        }
    }

    /// The body of a watch: runs on the replica's host until the deadline, the client going
    /// away, the cache being re-initialised, or the watcher falling out of the window.
    async fn stream(
        self,
        replica: usize,
        id: u64,
        w: WatchRequest,
        start: Start,
        lifetime: Duration,
        tx: mpsc::Sender<Bytes>,
    ) {
        let cursor = match start {
            Start::TooOld {
                requested,
                window_start,
            } => {
                self.count_expired();
                let status = ApiError::expired(format!(
                    "too old resource version: {requested} ({window_start})"
                ))
                .to_status();
                self.send(replica, id, &tx, watch_event_line("ERROR", &status))
                    .await;
                return;
            }
            Start::From { cursor } => cursor,
            Start::Initial { objects, cursor } => {
                for o in objects {
                    let line = w.line("ADDED", &o, self.now());
                    if !self.send(replica, id, &tx, line).await {
                        return;
                    }
                }
                if w.initial_events {
                    let b = self.bookmark(&w, cursor, true);
                    if !self.send(replica, id, &tx, b).await {
                        return;
                    }
                }
                cursor
            }
        };
        self.forward(replica, id, &w, cursor, lifetime, &tx).await;
    }

    async fn forward(
        &self,
        replica: usize,
        id: u64,
        w: &WatchRequest,
        mut cursor: u64,
        lifetime: Duration,
        tx: &mpsc::Sender<Bytes>,
    ) {
        let started = Instant::now();
        let deadline = started + lifetime;
        let mut final_bookmark = deadline
            .checked_sub(Duration::from_secs(2))
            .filter(|t| *t > started);
        let interval = self.config().bookmark_interval;
        let mut next_bookmark = started + interval;
        let mut changed = self.cache_changes(replica);
        // Events may have arrived between the start and this subscription: look at once.
        changed.mark_changed();
        let generation = self.with_cache(replica, |cache, _| cache.generation());
        let control = self.watch_control(replica);
        loop {
            let bookmark_at = match final_bookmark {
                Some(f) if f < next_bookmark => f,
                _ => next_bookmark,
            };
            tokio::select! {
                biased;
                _ = tx.closed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep_until(bookmark_at), if w.bookmarks => {
                    if Some(bookmark_at) == final_bookmark {
                        final_bookmark = None;
                        next_bookmark = deadline + interval;
                    } else {
                        next_bookmark = bookmark_at + interval;
                    }
                    let b = self.bookmark(w, cursor, false);
                    if !self.send(replica, id, tx, b).await {
                        return;
                    }
                }
                _ = changed.changed() => {
                    if self.watch_control(replica) != control {
                        self.end_by_fault(replica, id, tx, control).await;
                        return;
                    }
                    let Some((lines, next)) = self.pending(replica, w, cursor, generation) else { return };
                    cursor = next;
                    for line in lines {
                        if !self.send(replica, id, tx, line).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Ends a watch because of an injected fault: silently when dropped, with an in-stream
    /// 410 when expired, with an in-stream `ERROR` of the fault's code when errored.
    async fn end_by_fault(
        &self,
        replica: usize,
        id: u64,
        tx: &mpsc::Sender<Bytes>,
        control: WatchControl,
    ) {
        let now = self.watch_control(replica);
        let status = if now.expired != control.expired {
            self.count_expired();
            ApiError::expired("too old resource version: the watch cache moved on").to_status()
        } else if now.errored != control.errored {
            let (code, retry_after) = now.error;
            let mut e = ApiError::injected(code);
            e.retry_after_seconds = retry_after;
            e.to_status()
        } else {
            return;
        };
        self.send(replica, id, tx, watch_event_line("ERROR", &status))
            .await;
    }

    /// The lines for events after `cursor`, and the new cursor; `None` ends the watch (the
    /// cache was re-initialised, or this watcher fell out of the window).
    fn pending(
        &self,
        replica: usize,
        w: &WatchRequest,
        cursor: u64,
        generation: u64,
    ) -> Option<(Vec<Bytes>, u64)> {
        let now = self.now();
        self.with_cache(replica, |cache, _| {
            if cache.generation() != generation {
                return None;
            }
            let lines = cache
                .events_after(cursor)?
                .filter_map(|ev| w.translate(ev))
                .map(|(kind, obj)| w.line(kind.as_str(), &obj, now))
                .collect();
            Some((lines, cache.synced()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_line_is_the_type_then_the_object_then_a_newline() {
        // The bytes themselves: kube-apiserver's field order, the object as serde_json writes it.
        let obj = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"},
            "data": {"z": "1", "a": "\"quoted\"\n"}});
        let line = watch_event_line("MODIFIED", &obj);
        let expected = format!("{{\"type\":\"MODIFIED\",\"object\":{obj}}}\n");
        assert_eq!(std::str::from_utf8(&line).unwrap(), expected);
        let back: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, json!({"type": "MODIFIED", "object": obj}));
    }
}
