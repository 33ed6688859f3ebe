//! What a served apiserver saw, per request: who sent it (its TCP connection and
//! `User-Agent`), when, what it asked for, the answer's status and `Retry-After`, the
//! resourceVersion a list returned, and every event a watch stream sent. The checkers of
//! external clients (`check::served`) read nothing else.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::time::Instant;

use crate::apiserver::Body;

/// Requests kept; later ones are served but not recorded (a warning says so once).
pub const MAX_REQUESTS: usize = 1_000_000;

/// Events kept per watch: past it, each new event replaces the last one kept, so the newest
/// resourceVersion and a final `ERROR` are always there.
pub const MAX_SENT_PER_WATCH: usize = 10_000;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// The TCP connection it came on (numbered from 1 in accept order).
    pub conn: u64,
    /// Its `User-Agent` header (empty when absent).
    pub user_agent: String,
    /// When it arrived, since the server started.
    pub at: Duration,
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/api/v1/namespaces/default/configmaps`.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// The answer's `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// For a list answered 200: the collection's resourceVersion.
    pub list_rv: Option<u64>,
    /// For a watch answered 200: every event the stream sent, in order.
    pub sent: Vec<Sent>,
}

/// One event a watch stream sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When, since the server started.
    pub at: Duration,
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub kind: String,
    /// `namespace/name` of the object (empty for bookmarks and errors).
    pub key: String,
    /// The object's resourceVersion (0 for errors).
    pub rv: u64,
    /// For an `ERROR`: the Status code (410 for Expired).
    pub code: Option<u16>,
}

impl Access {
    /// The value of query parameter `name`, if present.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Whether it is a watch (`watch=true` or `watch=1`, or a legacy `/watch/` path).
    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch").as_deref(), Some("true" | "1"))
            || self.path.contains("/watch/")
    }

    /// Whether it is a list: a `GET` of a collection that is not a watch.
    pub fn is_list(&self) -> bool {
        self.method == "GET" && !self.is_watch() && is_collection(&self.path)
    }

    /// The watched or listed collection with its selectors: requests with the same stream
    /// key read the same events (`/api/v1/namespaces/default/configmaps?labelSelector=a`).
    pub fn stream_key(&self) -> String {
        let path = self.path.replacen("/watch/", "/", 1);
        let mut key = path.trim_end_matches('/').to_string();
        for p in ["labelSelector", "fieldSelector"] {
            if let Some(v) = self.param(p).filter(|v| !v.is_empty()) {
                key += &format!(" {p}={v}");
            }
        }
        key
    }

    /// The `resourceVersion` it asked for, as written (empty when absent).
    pub fn rv_param(&self) -> String {
        self.param("resourceVersion").unwrap_or_default()
    }

    /// Whether the answer was an error the client should back off from (429 or 5xx).
    pub fn failed(&self) -> bool {
        self.status == 429 || self.status >= 500
    }

    /// Whether the request was answered with a 410: an HTTP 410, or a watch whose stream
    /// sent an `ERROR` with code 410.
    pub fn expired(&self) -> bool {
        self.status == 410 || self.sent.iter().any(|e| e.code == Some(410))
    }

    /// The newest resourceVersion the answer carried (a list's, or a watch event's).
    pub fn newest_rv(&self) -> Option<u64> {
        self.sent.iter().map(|e| e.rv).chain(self.list_rv).max()
    }
}

/// Whether `path` names a collection (`.../configmaps`), not one object or a discovery
/// document.
fn is_collection(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segs.first() {
        Some(&"api") => &segs[segs.len().min(2)..],
        Some(&"apis") => &segs[segs.len().min(3)..],
        _ => return false,
    };
    matches!(rest, [_] | ["namespaces", _, _])
}

/// The shared record of every request, in arrival order.
#[derive(Debug, Clone)]
pub struct AccessLog {
    inner: Arc<Mutex<Vec<Access>>>,
    started: Instant,
    started_unix: Duration,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self::new()
    }
}

impl AccessLog {
    /// An empty log whose clock starts now.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            started: Instant::now(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// When the log's clock started (the scenario's time zero).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Time since the log's clock started for a server timestamp (time since the UNIX
    /// epoch, as `Clock::Wall` gives it).
    pub fn since_start(&self, unix: Duration) -> Duration {
        unix.saturating_sub(self.started_unix)
    }

    /// Time since the log's clock started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Access> {
        self.inner.lock().expect("access log").clone()
    }

    /// Records the arrival of `req` on connection `conn`; returns its index for
    /// [`Self::answer`].
    pub fn arrive<B>(&self, conn: u64, req: &Request<B>) -> usize {
        let user_agent = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let access = Access {
            conn,
            user_agent,
            at: self.elapsed(),
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            status: 0,
            retry_after: None,
            list_rv: None,
            sent: Vec::new(),
        };
        let mut all = self.inner.lock().expect("access log");
        if all.len() == MAX_REQUESTS {
            tracing::warn!("access log full ({MAX_REQUESTS} requests): later ones are not judged");
        }
        if all.len() >= MAX_REQUESTS {
            return usize::MAX;
        }
        all.push(access);
        all.len() - 1
    }

    /// Records the answer to request `index` and hands it on: a list's body is read for its
    /// resourceVersion, a watch's events are recorded as they are sent — those `delivers`
    /// says are lost (taken by a connection a partition cut) are not.
    pub async fn answer(
        &self,
        index: usize,
        resp: Response<Body>,
        delivers: impl Fn() -> bool + Send + 'static,
    ) -> Response<Body> {
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let (watch, list) = self.with(index, |a| {
            a.status = resp.status().as_u16();
            a.retry_after = retry_after;
            let ok = a.status == 200 && a.method == Method::GET.as_str();
            (ok && a.is_watch(), ok && a.is_list())
        });
        let (parts, body) = resp.into_parts();
        let body = if watch {
            let log = self.clone();
            body.map_frame(move |frame| {
                if let Some(data) = frame.data_ref().filter(|_| delivers()) {
                    log.sent(index, data);
                }
                frame
            })
            .boxed_unsync()
        } else if list {
            let bytes = body
                .collect()
                .await
                .expect("in-memory bodies do not fail")
                .to_bytes();
            let rv = collection_rv(&bytes);
            self.with(index, |a| a.list_rv = rv);
            Full::new(bytes).boxed_unsync()
        } else {
            body
        };
        Response::from_parts(parts, body)
    }

    /// `f` on request `index`; on a scratch record for a request not kept.
    fn with<T>(&self, index: usize, f: impl FnOnce(&mut Access) -> T) -> T {
        let mut all = self.inner.lock().expect("access log");
        match all.get_mut(index) {
            Some(a) => f(a),
            None => f(&mut Access {
                conn: 0,
                user_agent: String::new(),
                at: Duration::ZERO,
                method: String::new(),
                path: String::new(),
                query: String::new(),
                status: 0,
                retry_after: None,
                list_rv: None,
                sent: Vec::new(),
            }),
        }
    }

    /// Records the watch events in one chunk of a stream (one JSON line each).
    fn sent(&self, index: usize, data: &Bytes) {
        let at = self.elapsed();
        let events: Vec<Sent> = data
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
            .map(|ev| sent_event(at, &ev))
            .collect();
        self.with(index, |a| {
            for e in events {
                if a.sent.len() >= MAX_SENT_PER_WATCH {
                    a.sent.pop();
                }
                a.sent.push(e);
            }
        });
    }
}

/// A watch event line as a [`Sent`].
fn sent_event(at: Duration, ev: &Value) -> Sent {
    let obj = &ev["object"];
    let meta = &obj["metadata"];
    let kind = ev["type"].as_str().unwrap_or("").to_string();
    let key = match (meta["namespace"].as_str(), meta["name"].as_str()) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.to_string(),
        _ => String::new(),
    };
    Sent {
        at,
        code: (kind == "ERROR").then(|| obj["code"].as_u64().unwrap_or(0) as u16),
        kind,
        key,
        rv: rv_of(meta),
    }
}

fn rv_of(meta: &Value) -> u64 {
    meta["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The resourceVersion of a JSON list (or Table) body.
fn collection_rv(bytes: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(rv_of(&v["metadata"])).filter(|rv| *rv > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(method: &str, path: &str, query: &str) -> Access {
        Access {
            conn: 1,
            user_agent: "ua".into(),
            at: Duration::ZERO,
            method: method.into(),
            path: path.into(),
            query: query.into(),
            status: 200,
            retry_after: None,
            list_rv: None,
            sent: Vec::new(),
        }
    }

    #[test]
    fn lists_watches_and_their_stream_keys_are_told_from_the_request() {
        let cms = "/api/v1/namespaces/default/configmaps";
        let w = access("GET", cms, "watch=1&resourceVersion=5&labelSelector=a%3Db");
        assert!(w.is_watch() && !w.is_list());
        assert_eq!(w.rv_param(), "5");
        assert_eq!(w.stream_key(), format!("{cms} labelSelector=a=b"));
        let l = access("GET", cms, "limit=500");
        assert!(l.is_list() && !l.is_watch());
        assert_eq!(l.stream_key(), cms);
        let legacy = access("GET", "/api/v1/watch/namespaces/default/configmaps", "");
        assert!(legacy.is_watch());
        assert_eq!(legacy.stream_key(), cms);
        assert!(!access("GET", &format!("{cms}/a"), "").is_list());
        assert!(access("GET", "/apis/example.com/v1/widgets", "").is_list());
        assert!(!access("GET", "/apis/example.com/v1", "").is_list());
    }

    #[tokio::test]
    async fn a_watch_body_is_recorded_event_by_event_and_a_list_by_its_version() {
        // Proves the recording through the real wrappers: two frames of a watch, a list body.
        let log = AccessLog::new();
        let req = Request::get("/api/v1/configmaps?watch=true")
            .body(())
            .unwrap();
        let i = log.arrive(3, &req);
        let lines = [
            r#"{"type":"ADDED","object":{"metadata":{"namespace":"d","name":"a","resourceVersion":"7"}}}"#,
            r#"{"type":"ERROR","object":{"kind":"Status","code":410}}"#,
        ];
        let frames = futures::stream::iter(lines.map(|l| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(format!("{l}\n"))))
        }));
        let body = http_body_util::StreamBody::new(frames).boxed_unsync();
        let resp = log.answer(i, Response::new(body), || true).await;
        resp.into_body().collect().await.unwrap();
        let a = &log.requests()[0];
        assert_eq!((a.conn, a.status), (3, 200));
        let got: Vec<_> = a
            .sent
            .iter()
            .map(|e| (e.kind.as_str(), e.rv, e.code))
            .collect();
        assert_eq!(got, [("ADDED", 7, None), ("ERROR", 0, Some(410))]);
        assert!(a.expired());
        let req = Request::get("/api/v1/configmaps").body(()).unwrap();
        let i = log.arrive(3, &req);
        let list = Full::new(Bytes::from(
            r#"{"kind":"ConfigMapList","metadata":{"resourceVersion":"9"}}"#,
        ));
        log.answer(i, Response::new(list.boxed_unsync()), || true)
            .await;
        assert_eq!(log.requests()[1].list_rv, Some(9));
    }

    #[test]
    fn a_long_watch_keeps_at_most_its_bound_and_always_its_newest_event() {
        let log = AccessLog::new();
        let i = log.arrive(
            1,
            &Request::get("/api/v1/configmaps?watch=1").body(()).unwrap(),
        );
        for rv in 1..=(MAX_SENT_PER_WATCH as u64 + 5) {
            let line = format!(
                r#"{{"type":"MODIFIED","object":{{"metadata":{{"name":"a","resourceVersion":"{rv}"}}}}}}"#
            );
            log.sent(i, &Bytes::from(line));
        }
        let a = &log.requests()[0];
        assert_eq!(a.sent.len(), MAX_SENT_PER_WATCH);
        assert_eq!(a.newest_rv(), Some(MAX_SENT_PER_WATCH as u64 + 5));
    }
}
