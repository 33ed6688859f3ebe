//! RetryWatcher: one logical watch that survives stream ends, timeouts and connection errors
//! by re-watching from the last resourceVersion it delivered (client-go's
//! `tools/watch.RetryWatcher`, with the differences DESIGN.md §4 lists).
//!
//! - It refuses an initial resourceVersion of `""` or `"0"`: their synthetic ADDED events are
//!   not in RV order, so "resume from the last RV" would be meaningless.
//! - Every (re)connect calls the watch function with [`WatchOptions`] carrying the last
//!   delivered RV and `allowWatchBookmarks`; the function must pass them through.
//! - Bookmarks advance the RV and are not emitted.
//! - Stream end, the client-side deadline, connection errors, 429 and 5xx at watch start, and
//!   every in-stream `ERROR` event but 410 — whatever its code, even one whose object is not
//!   a `Status` (client-go: "we retry by default"): reconnect from the last RV, attempts at
//!   least `min_restart_delay` apart (plus seeded jitter), after any `retryAfterSeconds`.
//! - Terminal, emitted once, then the stream ends: 410 Expired (in-stream *or* at watch
//!   start; client-go loops forever on the latter), 401/403 and other 4xx at watch start, an
//!   object without a usable RV, a line that is not a watch event ([`Error::Decode`]), and
//!   [`Error::HistoricalReplay`] — an event whose RV is not newer than the last one, which is
//!   what a watch function that ignores its options produces. The table of which code is
//!   terminal where is in `classify.rs`.
//! - Unlike client-go, each watch asks the server for `timeoutSeconds` and gives up on a
//!   stream that has not ended `deadline_grace` after it, and gives a watch request that
//!   long to answer: a partition that swallowed a TCP segment leaves a stream (or a request)
//!   silent forever, and nothing else would notice.
//!
//! ```no_run
//! # async fn demo(api: kube::Api<k8s_openapi::api::core::v1::ConfigMap>) -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use kube_chaos::retry_watcher::{RetryWatcher, RetryWatcherConfig};
//!
//! let list = api.list(&Default::default()).await?;
//! let rv = list.metadata.resource_version.unwrap_or_default();
//! let mut w = RetryWatcher::from_api(api, &rv, RetryWatcherConfig::default())?;
//! while let Some(event) = w.next().await {
//!     println!("{:?}", event?);
//! }
//! # Ok(()) }
//! ```

use std::fmt::Debug;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use kube::api::{Api, WatchEvent, WatchParams};
use kube::Resource;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

mod classify;

use classify::{log_terminal, Next};

use crate::stop::StopHandle;
use crate::zoo::Bug;

/// What the watch function is asked to do on each (re)connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Watch changes after this resourceVersion.
    pub resource_version: String,
    /// Ask for bookmarks (always true from the RetryWatcher).
    pub allow_bookmarks: bool,
    /// Server-side `timeoutSeconds`.
    pub timeout_seconds: Option<u32>,
    /// Label selector to pass through.
    pub label_selector: Option<String>,
    /// Field selector to pass through.
    pub field_selector: Option<String>,
}

impl WatchOptions {
    /// The kube `WatchParams` for these options (the RV goes separately to `Api::watch`).
    pub fn to_params(&self) -> WatchParams {
        WatchParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            timeout: self.timeout_seconds,
            bookmarks: self.allow_bookmarks,
            ..WatchParams::default()
        }
    }
}

/// A started watch: the stream of raw events.
pub type WatchStream<K> = BoxStream<'static, kube::Result<WatchEvent<K>>>;

/// The future a watch function returns.
pub type WatchFuture<K> = BoxFuture<'static, kube::Result<WatchStream<K>>>;

/// client-go's `WatchFunc(options)`: starts a watch with the given options. Closures
/// `FnMut(WatchOptions) -> WatchFuture<K>` are watch functions.
pub trait WatchFn<K>: Send + 'static {
    /// Starts one watch.
    fn watch(&mut self, options: WatchOptions) -> WatchFuture<K>;
}

impl<K, F> WatchFn<K> for F
where
    F: FnMut(WatchOptions) -> WatchFuture<K> + Send + 'static,
{
    fn watch(&mut self, options: WatchOptions) -> WatchFuture<K> {
        self(options)
    }
}

/// A delivered change.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// The object was created (or moved into the selector).
    Added(K),
    /// The object changed.
    Modified(K),
    /// The object was deleted (or moved out of the selector); its last state.
    Deleted(K),
}

impl<K> Event<K> {
    /// The object carried by the event.
    pub fn object(&self) -> &K {
        match self {
            Event::Added(o) | Event::Modified(o) | Event::Deleted(o) => o,
        }
    }

    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Added(_) => "ADDED",
            Event::Modified(_) => "MODIFIED",
            Event::Deleted(_) => "DELETED",
        }
    }
}

/// Why a RetryWatcher stopped. Each is emitted once, as the last item of the stream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The initial resourceVersion was `""` or `"0"`.
    #[error("initial resourceVersion {0:?} is not allowed: its synthetic ADDED events are not in resourceVersion order; start from the resourceVersion of a list")]
    InvalidInitialResourceVersion(String),
    /// The resourceVersion to resume from left the server's window (410 Gone / Expired).
    #[error("resourceVersion {resource_version} expired: {message}")]
    Expired {
        /// The RV the watch asked for.
        resource_version: String,
        /// The server's message.
        message: String,
    },
    /// An event not newer than one already delivered: the watch function replayed history
    /// (typically because it ignored the options it was given).
    #[error("historical replay: {event} {name} at resourceVersion {got} is not newer than the last delivered resourceVersion {last}")]
    HistoricalReplay {
        /// Event type.
        event: &'static str,
        /// `namespace/name` of the object.
        name: String,
        /// Its resourceVersion.
        got: u64,
        /// The last delivered resourceVersion.
        last: u64,
    },
    /// 401 from the server.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403 from the server.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// An event whose object has no numeric resourceVersion.
    #[error("{event} event for {name} has no usable resourceVersion (got {got:?})")]
    MissingResourceVersion {
        /// Event type.
        event: &'static str,
        /// `namespace/name` of the object.
        name: String,
        /// What the object carried.
        got: Option<String>,
    },
    /// An event that could not be decoded (including unknown event types).
    #[error("undecodable watch event")]
    Decode(#[source] kube::Error),
    /// Any other error status a watch request was answered with (400, 404, 422, ...).
    #[error("watch failed with {code} {reason}: {message}")]
    Status {
        /// HTTP / Status code.
        code: u16,
        /// Status reason.
        reason: String,
        /// Status message.
        message: String,
    },
}

/// Knobs of a RetryWatcher.
#[derive(Debug, Clone)]
pub struct RetryWatcherConfig {
    /// Minimum time between the starts of two watch attempts (client-go: 1 s).
    pub min_restart_delay: Duration,
    /// Up to this fraction of `min_restart_delay` is added at random to each restart delay.
    pub restart_jitter: f64,
    /// `timeoutSeconds` asked of the server.
    pub timeout: Duration,
    /// How long after `timeout` a stream that has not ended is declared dead.
    pub deadline_grace: Duration,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// Seed of the jitter RNG (`None`: from process randomness).
    pub seed: Option<u64>,
    /// The bug zoo's switch (always off outside the kube-chaos harness).
    #[doc(hidden)]
    pub zoo: crate::zoo::Zoo,
}

impl Default for RetryWatcherConfig {
    fn default() -> Self {
        Self {
            min_restart_delay: Duration::from_secs(1),
            restart_jitter: 0.1,
            timeout: Duration::from_secs(300),
            deadline_grace: Duration::from_secs(30),
            label_selector: None,
            field_selector: None,
            seed: None,
            zoo: crate::zoo::Zoo::default(),
        }
    }
}

/// A watch that resumes from the last delivered resourceVersion. A `Stream` of
/// `Result<Event<K>, Error>`; it ends after a terminal error or `stop()`.
pub struct RetryWatcher<K> {
    stream: BoxStream<'static, Result<Event<K>, Error>>,
    stop: StopHandle,
}

impl<K> Debug for RetryWatcher<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryWatcher")
            .field("stopped", &self.stop.is_stopped())
            .finish()
    }
}

impl<K> RetryWatcher<K>
where
    K: Resource + Clone + Send + 'static,
{
    /// A RetryWatcher over any watch function, starting after `initial_rv`.
    pub fn new(
        initial_rv: &str,
        watch_fn: impl WatchFn<K>,
        config: RetryWatcherConfig,
    ) -> Result<Self, Error> {
        let last_rv = match initial_rv.parse::<u64>() {
            Ok(rv) if rv > 0 => rv,
            _ => return Err(Error::InvalidInitialResourceVersion(initial_rv.to_string())),
        };
        let stop = StopHandle::default();
        let worker = Worker {
            watch_fn: Box::new(watch_fn),
            rng: crate::rng::seeded(config.seed),
            config,
            last_rv,
            current: None,
            last_start: None,
            not_before: None,
            done: false,
            stop: stop.clone(),
        };
        let stream = futures::stream::unfold(worker, |mut w| async move {
            let item = w.next_item().await?;
            Some((item, w))
        })
        .fuse()
        .boxed();
        Ok(Self { stream, stop })
    }

    /// A RetryWatcher on `api` that always passes its options through.
    pub fn from_api(
        api: Api<K>,
        initial_rv: &str,
        config: RetryWatcherConfig,
    ) -> Result<Self, Error>
    where
        K: DeserializeOwned + Debug,
    {
        let watch_fn = move |options: WatchOptions| -> WatchFuture<K> {
            let api = api.clone();
            async move {
                let stream = api
                    .watch(&options.to_params(), &options.resource_version)
                    .await?;
                Ok(stream.boxed())
            }
            .boxed()
        };
        Self::new(initial_rv, watch_fn, config)
    }

    /// A handle that stops this watcher from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops the watcher: the stream ends. Idempotent.
    pub fn stop(&self) {
        self.stop.stop();
    }
}

impl<K> Stream for RetryWatcher<K> {
    type Item = Result<Event<K>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.poll_next_unpin(cx)
    }
}

struct Worker<K> {
    watch_fn: Box<dyn WatchFn<K>>,
    config: RetryWatcherConfig,
    rng: ChaCha8Rng,
    last_rv: u64,
    /// The open stream and the client-side deadline after which it counts as dead.
    current: Option<(WatchStream<K>, Instant)>,
    last_start: Option<Instant>,
    not_before: Option<Instant>,
    done: bool,
    stop: StopHandle,
}

impl<K> Worker<K>
where
    K: Resource + Clone + Send + 'static,
{
    async fn next_item(&mut self) -> Option<Result<Event<K>, Error>> {
        loop {
            if self.done {
                return None;
            }
            if self.current.is_none() {
                if let Err(e) = self.connect().await? {
                    return Some(self.finish(e));
                }
                continue;
            }
            let (stream, deadline) = self.current.as_mut().expect("connected above");
            let item = tokio::select! {
                biased;
                _ = self.stop.stopped() => return self.stopped(),
                _ = tokio::time::sleep_until(*deadline) => {
                    tracing::warn!(rv = self.last_rv, "watch outlived its deadline: presumed dead, reconnecting");
                    self.current = None;
                    continue;
                }
                item = stream.next() => item,
            };
            match item {
                None => {
                    tracing::debug!(rv = self.last_rv, "watch stream ended, resuming");
                    self.current = None;
                }
                Some(Ok(event)) => {
                    if let Some(out) = self.on_event(event) {
                        return Some(out);
                    }
                }
                Some(Err(e)) => {
                    self.current = None;
                    if let Next::Stop(e) = self.classify_stream_error(e) {
                        return Some(self.finish(e));
                    }
                }
            }
        }
    }

    /// Starts the next watch, respecting the restart delay and any Retry-After. `None` when
    /// stopped meanwhile; `Some(Err)` for a terminal failure.
    async fn connect(&mut self) -> Option<Result<(), Error>> {
        let jitter = self
            .config
            .min_restart_delay
            .mul_f64(self.config.restart_jitter * self.rng.random::<f64>());
        let mut at = self
            .last_start
            .map(|s| s + self.config.min_restart_delay + jitter);
        if let Some(nb) = self.not_before.take() {
            at = Some(at.map_or(nb, |a| a.max(nb)));
        }
        if let Some(at) = at {
            tokio::select! {
                biased;
                _ = self.stop.stopped() => { self.done = true; return None; }
                _ = tokio::time::sleep_until(at) => {}
            }
        }
        let reconnect = self.last_start.is_some();
        self.last_start = Some(Instant::now());
        let resource_version = match reconnect && self.config.zoo.has(Bug::ReconnectFromEmpty) {
            true => String::new(),
            false => self.last_rv.to_string(),
        };
        let options = WatchOptions {
            resource_version,
            allow_bookmarks: true,
            timeout_seconds: Some(self.config.timeout.as_secs().max(1) as u32),
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
        };
        // A request sent on a connection that silently died (a partition, a lost packet)
        // never answers: the start gets the same deadline as the stream.
        let deadline = Instant::now() + self.config.timeout + self.config.deadline_grace;
        let started = tokio::select! {
            biased;
            _ = self.stop.stopped() => { self.done = true; return None; }
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(rv = self.last_rv, "watch request outlived its deadline, retrying");
                return Some(Ok(()));
            }
            r = self.watch_fn.watch(options) => r,
        };
        match started {
            Ok(stream) => {
                let deadline = Instant::now() + self.config.timeout + self.config.deadline_grace;
                self.current = Some((stream, deadline));
                Some(Ok(()))
            }
            Err(kube::Error::Api(s)) if self.misreads(s.code) => {
                Some(Err(classify::expired(&s, self.last_rv)))
            }
            Err(e) => match classify::start_error(e, self.last_rv) {
                Next::Retry { retry_after, why } => {
                    tracing::warn!(rv = self.last_rv, %why, "watch failed to start, retrying");
                    self.not_before = retry_after.map(|d| Instant::now() + d);
                    Some(Ok(()))
                }
                Next::Stop(e) => Some(Err(e)),
            },
        }
    }

    fn on_event(&mut self, event: WatchEvent<K>) -> Option<Result<Event<K>, Error>> {
        let event = match event {
            WatchEvent::Added(o) => Event::Added(o),
            WatchEvent::Modified(o) => Event::Modified(o),
            WatchEvent::Deleted(o) => Event::Deleted(o),
            WatchEvent::Bookmark(b) => {
                if let Ok(rv) = b.metadata.resource_version.parse::<u64>() {
                    self.last_rv = self.last_rv.max(rv);
                }
                return None;
            }
            WatchEvent::Error(status) => {
                self.current = None;
                if self.misreads(status.code) {
                    return Some(self.finish(classify::expired(&status, self.last_rv)));
                }
                return match classify::in_stream(&status, self.last_rv) {
                    Next::Retry { retry_after, why } => {
                        tracing::warn!(rv = self.last_rv, %why, "watch error event, reconnecting");
                        self.not_before = retry_after.map(|d| Instant::now() + d);
                        None
                    }
                    Next::Stop(e) => Some(self.finish(e)),
                };
            }
        };
        let meta = event.object().meta();
        let name = format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or(""),
            meta.name.as_deref().unwrap_or("")
        );
        let got = meta.resource_version.clone();
        let Some(rv) = got.as_deref().and_then(|rv| rv.parse::<u64>().ok()) else {
            return Some(self.finish(Error::MissingResourceVersion {
                event: event.kind(),
                name,
                got,
            }));
        };
        if rv <= self.last_rv {
            return Some(self.finish(Error::HistoricalReplay {
                event: event.kind(),
                name,
                got: rv,
                last: self.last_rv,
            }));
        }
        self.last_rv = rv;
        Some(Ok(event))
    }

    /// The bug zoo's `ServerErrorAsExpired`: a 5xx taken for 410.
    fn misreads(&self, code: u16) -> bool {
        (500..=599).contains(&code) && self.config.zoo.has(Bug::ServerErrorAsExpired)
    }

    fn classify_stream_error(&mut self, e: kube::Error) -> Next {
        let next = classify::stream_error(e, self.last_rv);
        if let Next::Retry { retry_after, why } = &next {
            tracing::warn!(rv = self.last_rv, %why, "watch stream failed, reconnecting");
            self.not_before = retry_after.map(|d| Instant::now() + d);
        }
        next
    }

    fn finish(&mut self, e: Error) -> Result<Event<K>, Error> {
        log_terminal(&e, self.last_rv);
        self.done = true;
        self.current = None;
        Err(e)
    }

    fn stopped(&mut self) -> Option<Result<Event<K>, Error>> {
        self.done = true;
        self.current = None;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn never(_: WatchOptions) -> WatchFuture<ConfigMap> {
        futures::future::pending().boxed()
    }

    #[test]
    fn an_initial_resource_version_of_empty_or_zero_is_refused() {
        // The constructor checks before any watch starts.
        for rv in ["", "0", "abc", "-3"] {
            match RetryWatcher::<ConfigMap>::new(rv, never, RetryWatcherConfig::default()) {
                Err(Error::InvalidInitialResourceVersion(got)) => assert_eq!(got, rv),
                other => panic!("{rv:?}: expected a refusal, got {other:?}"),
            }
        }
        assert!(RetryWatcher::<ConfigMap>::new("12", never, RetryWatcherConfig::default()).is_ok());
    }

    /// A watch function that plays one scripted stream per call (then pends forever) and
    /// records the resourceVersion and time of each call.
    fn scripted(
        streams: Vec<Vec<kube::Result<WatchEvent<ConfigMap>>>>,
        calls: std::sync::Arc<std::sync::Mutex<Vec<(String, Instant)>>>,
    ) -> impl FnMut(WatchOptions) -> WatchFuture<ConfigMap> {
        let mut streams = streams.into_iter();
        move |options: WatchOptions| {
            calls
                .lock()
                .unwrap()
                .push((options.resource_version, Instant::now()));
            let events = streams.next().unwrap_or_default();
            let stream = futures::stream::iter(events).chain(futures::stream::pending());
            futures::future::ready(Ok(stream.boxed())).boxed()
        }
    }

    fn cm(rv: u64) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "d", "resourceVersion": rv.to_string()}
        }))
        .unwrap()
    }

    fn status_json(v: serde_json::Value) -> kube::core::Status {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_in_stream_error_that_is_not_410_resumes_from_the_last_rv_after_retry_after() {
        // Proves client-go's "we retry by default": a 400, a code-0 ERROR (its object was not
        // a Status) and a 500 with retryAfterSeconds each end only the current stream; every
        // re-watch asks for the last delivered RV, the last one no sooner than 4 s later.
        let calls = std::sync::Arc::default();
        let error = |code: u16, retry: u32| {
            Ok(WatchEvent::Error(
                status_json(serde_json::json!({
                    "code": code, "message": "m", "reason": "R", "details": {"retryAfterSeconds": retry}
                }))
                .boxed(),
            ))
        };
        let streams = vec![
            vec![Ok(WatchEvent::Added(cm(2))), error(400, 0)],
            vec![Ok(WatchEvent::Modified(cm(3))), error(0, 0)],
            vec![error(500, 4)],
            vec![Ok(WatchEvent::Modified(cm(4)))],
        ];
        let config = RetryWatcherConfig {
            seed: Some(1),
            ..RetryWatcherConfig::default()
        };
        let mut w = RetryWatcher::new(
            "1",
            scripted(streams, std::sync::Arc::clone(&calls)),
            config,
        )
        .unwrap();
        let mut rvs = Vec::new();
        for _ in 0..3 {
            let ev = w.next().await.expect("an event").expect("not an error");
            rvs.push(ev.object().metadata.resource_version.clone().unwrap());
        }
        assert_eq!(rvs, ["2", "3", "4"]);
        let calls = calls.lock().unwrap().clone();
        let asked: Vec<&str> = calls.iter().map(|(rv, _)| rv.as_str()).collect();
        assert_eq!(asked, ["1", "2", "3", "3"]);
        assert!(
            calls[3].1 - calls[2].1 >= Duration::from_secs(4),
            "Retry-After honoured"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_that_is_not_a_watch_event_stops_with_decode_once() {
        // kube hands such a line over as a code-0 Status error: terminal, emitted once.
        let calls = std::sync::Arc::default();
        let garbage = Err(kube::Error::Api(
            status_json(serde_json::json!({"code": 0, "message": ""})).boxed(),
        ));
        let streams = vec![vec![Ok(WatchEvent::Added(cm(2))), garbage]];
        let mut w = RetryWatcher::new("1", scripted(streams, calls), RetryWatcherConfig::default())
            .unwrap();
        assert!(matches!(w.next().await, Some(Ok(Event::Added(_)))));
        assert!(matches!(w.next().await, Some(Err(Error::Decode(_)))));
        assert!(w.next().await.is_none());
    }
}
