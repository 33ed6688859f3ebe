//! Each watch connection as its client saw it (and each list it made): when the request went out, from which
//! resourceVersion, and how it ended — the stream closed by the server, failed, was dropped
//! by the client (its deadline, a restart), or the request was refused. A `tower` layer on
//! the simulated `kube::Client` records them; nothing here changes a request or a response.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};

/// How a watch connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// Still open when the run ended.
    Open,
    /// The server ended the stream (its timeout, a dropped watch, an in-stream 410).
    Closed,
    /// The stream failed (a reset connection).
    Failed,
    /// The client let go of it (its deadline passed, or the process stopped).
    Dropped,
    /// The request was answered with this status instead of a stream.
    Refused(u16),
}

/// One watch connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientWatch {
    /// The subject instance that made it.
    pub instance: usize,
    /// The `resourceVersion` it asked for.
    pub resource_version: String,
    /// When the request went out (simulated time since the start).
    pub from: Duration,
    /// When it ended.
    pub to: Option<Duration>,
    /// How.
    pub end: WatchEnd,
}

/// A list request a client made: when, and as which instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientList {
    /// The subject instance that made it.
    pub instance: usize,
    /// When the request went out (simulated time since the start).
    pub at: Duration,
}

#[derive(Debug, Default)]
struct Logs {
    watches: Vec<ClientWatch>,
    lists: Vec<ClientList>,
}

/// The watch connections and list requests of a run (cheap to clone; clones share them).
#[derive(Debug, Clone, Default)]
pub struct WatchLog(Arc<Mutex<Logs>>);

/// Simulated time since the start. Outside the simulation (a host's tasks dropped with the
/// `Sim`) there is none: the caller reads the log before that.
fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

impl WatchLog {
    /// Every watch so far, in the order the requests went out.
    pub fn watches(&self) -> Vec<ClientWatch> {
        self.0.lock().expect("watch log").watches.clone()
    }

    /// Every list request so far, in order.
    pub fn lists(&self) -> Vec<ClientList> {
        self.0.lock().expect("watch log").lists.clone()
    }

    fn listed(&self, instance: usize) {
        let at = now();
        let mut log = self.0.lock().expect("watch log");
        log.lists.push(ClientList { instance, at });
    }

    fn open(&self, instance: usize, resource_version: String) -> usize {
        let mut logs = self.0.lock().expect("watch log");
        let log = &mut logs.watches;
        log.push(ClientWatch {
            instance,
            resource_version,
            from: now(),
            to: None,
            end: WatchEnd::Open,
        });
        log.len() - 1
    }

    fn end(&self, id: usize, end: WatchEnd) {
        let mut log = self.0.lock().expect("watch log");
        let w = &mut log.watches[id];
        if w.end == WatchEnd::Open {
            w.end = end;
            w.to = Some(now());
        }
    }
}

/// The `tower` service that records the watch requests of one instance's client.
#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
    log: WatchLog,
    instance: usize,
}

impl<S> Observed<S> {
    /// `inner`, recording into `log` as `instance`.
    pub fn new(inner: S, log: WatchLog, instance: usize) -> Self {
        Self {
            inner,
            log,
            instance,
        }
    }
}

/// Whether a request is a list: a GET of a collection (`/api/v1/{plural}`,
/// `/api/v1/namespaces/{ns}/{plural}`, the same under `/apis/{group}/{version}`) that is not
/// a watch.
fn is_list(method: &http::Method, path: &str, query: &str) -> bool {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segs.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return false,
    };
    let collection = rest.len() == 1 || (rest.len() == 3 && rest[0] == "namespaces");
    method == http::Method::GET && collection && watch_rv(query).is_none()
}

/// The watch's `resourceVersion` if `query` asks for a watch.
fn watch_rv(query: &str) -> Option<String> {
    let mut watch = false;
    let mut rv = String::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "watch" => watch = v == "true" || v == "1",
            "resourceVersion" => rv = v.into_owned(),
            _ => {}
        }
    }
    watch.then_some(rv)
}

impl<S, B, R> tower::Service<Request<B>> for Observed<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: Body<Data = Bytes> + Unpin,
{
    type Response = Response<ObservedBody<R>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let log = self.log.clone();
        let query = req.uri().query().unwrap_or("");
        if is_list(req.method(), req.uri().path(), query) {
            log.listed(self.instance);
        }
        let id = watch_rv(query).map(|rv| log.open(self.instance, rv));
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await;
            match (&resp, id) {
                (Err(_), Some(id)) => log.end(id, WatchEnd::Failed),
                (Ok(r), Some(id)) if !r.status().is_success() => {
                    log.end(id, WatchEnd::Refused(r.status().as_u16()))
                }
                _ => {}
            }
            resp.map(|r| r.map(|inner| ObservedBody { inner, id, log }))
        })
    }
}

/// A response body that tells the log when a watch stream ends.
#[derive(Debug)]
pub struct ObservedBody<R> {
    inner: R,
    id: Option<usize>,
    log: WatchLog,
}

impl<R: Body<Data = Bytes> + Unpin> Body for ObservedBody<R> {
    type Data = Bytes;
    type Error = R::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, R::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Some(id) = self.id {
            match &polled {
                Poll::Ready(None) => self.log.end(id, WatchEnd::Closed),
                Poll::Ready(Some(Err(_))) => self.log.end(id, WatchEnd::Failed),
                _ => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<R> Drop for ObservedBody<R> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.log.end(id, WatchEnd::Dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_watch_requests_are_recorded_with_their_resource_version() {
        assert_eq!(watch_rv("watch=true&resourceVersion=12"), Some("12".into()));
        assert_eq!(watch_rv("watch=1"), Some(String::new()));
        assert_eq!(watch_rv("resourceVersion=12&limit=5"), None);
    }

    #[test]
    fn lists_are_gets_of_collections_that_are_not_watches() {
        let get = http::Method::GET;
        assert!(is_list(
            &get,
            "/api/v1/namespaces/default/configmaps",
            "limit=500"
        ));
        assert!(is_list(&get, "/api/v1/configmaps", ""));
        assert!(is_list(
            &get,
            "/apis/apps/v1/namespaces/d/deployments",
            "resourceVersion=0"
        ));
        assert!(!is_list(
            &get,
            "/api/v1/namespaces/default/configmaps/a",
            ""
        ));
        assert!(!is_list(
            &get,
            "/api/v1/namespaces/default/configmaps",
            "watch=true"
        ));
        assert!(!is_list(
            &http::Method::POST,
            "/api/v1/namespaces/default/configmaps",
            ""
        ));
        assert!(!is_list(&get, "/version", ""));
    }

    #[test]
    fn an_ended_watch_keeps_its_first_ending() {
        let log = WatchLog::default();
        let id = log.open(3, "7".into());
        log.end(id, WatchEnd::Closed);
        log.end(id, WatchEnd::Dropped);
        let w = &log.watches()[0];
        assert_eq!(
            (w.instance, w.end, w.resource_version.as_str()),
            (3, WatchEnd::Closed, "7")
        );
        assert!(w.to.is_some());
    }
}
