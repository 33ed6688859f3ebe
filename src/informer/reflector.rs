//! The reflector: list, then watch from the list's RV, forever, applying every change to the
//! store and handing the notifications to the handlers under the store's lock.
//!
//! One loop, two phases. A failure classifies as `Expired` (relist from `""`) or `Other`
//! (relist not older than the last RV seen); both back off first. Within the watch phase, a
//! normal stream end re-watches from the last RV at once, a 429/5xx re-watches after a
//! backoff, and the client-side deadline (`timeout + grace`) ends a silent stream.
//!
//! As client-go's reflector: a list whose resourceVersion the server cannot serve (410, or
//! 504 with cause `ResourceVersionTooLarge` from a replica whose cache is behind) is sent again
//! at once as a consistent list from `""`, and the reflector stays at `""` until a list
//! succeeds, whatever else fails meanwhile; a watch that ended within a second counts as
//! "very short" only if it carried no event at all, bookmarks included.
//!
//! **Our choice, not client-go's:** after an in-stream 410 we relist from `""` (the latest
//! state) at once; client-go relists from its last RV and drops to `""` only when that list
//! fails with 410 or 504 too. Relisting from an RV the watch cache just called too old is a
//! round trip that can only fail or travel back in time.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::core::Status;
use kube::Resource;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::store::{Change, DeletedObject, Notification};
use super::Shared;
use crate::backoff::Backoff;
use crate::informer::InitialList;
use crate::zoo::Bug;

type Stream<K> = BoxStream<'static, kube::Result<WatchEvent<K>>>;

/// Why the reflector must list again.
#[derive(Debug)]
enum Failure {
    /// 410: the RV left the server's window; relist from `""`.
    Expired,
    /// A list's RV could not be served (410, or 504 `ResourceVersionTooLarge`): list from
    /// `""` at once.
    Unavailable {
        /// It was a 410 (counted as an expiry).
        expired: bool,
        /// The server's answer.
        why: String,
    },
    /// Anything else; relist not older than the last RV.
    Other(String),
}

/// How one watch stream ended.
enum End {
    /// The server closed it.
    Closed,
    /// It outlived its client-side deadline.
    Deadline,
    /// A retryable error (429, 5xx): re-watch after a backoff.
    Retry(String),
    /// Relist.
    Fail(Failure),
}

/// Runs the reflector until the informer is stopped.
pub(super) async fn run<K>(s: Arc<Shared<K>>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let stop = s.stop.clone();
    let seed = s.config.seed;
    let list_from = match s.config.initial_list {
        InitialList::Any => "0".to_string(),
        InitialList::Consistent => String::new(),
        InitialList::NotOlderThan(rv) => rv.to_string(),
    };
    let mut r = Reflector {
        rng: crate::rng::seeded(seed.map(|s| s.wrapping_add(1))),
        backoff: Backoff::reflector(seed),
        list_from,
        last_rv: String::new(),
        rv_unavailable: false,
        first: true,
        s,
    };
    tokio::select! {
        biased;
        _ = stop.stopped() => {}
        _ = r.run() => {}
    }
}

struct Reflector<K> {
    s: Arc<Shared<K>>,
    rng: ChaCha8Rng,
    backoff: Backoff,
    /// The RV the next list asks for.
    list_from: String,
    /// The last RV seen (list, event or bookmark).
    last_rv: String,
    /// client-go's `isLastSyncResourceVersionUnavailable`: lists go to `""` until one
    /// succeeds.
    rv_unavailable: bool,
    first: bool,
}

impl<K> Reflector<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    async fn run(&mut self) {
        loop {
            let listed = if self.s.config.streaming_list {
                self.streaming_list().await
            } else {
                self.list().await
            };
            let failure = match listed {
                Ok(pending) => self.watch(pending).await,
                Err(f) => f,
            };
            self.fail(failure).await;
        }
    }

    async fn fail(&mut self, failure: Failure) {
        self.health(false);
        match failure {
            Failure::Expired => {
                tracing::info!(rv = %self.last_rv, "resourceVersion expired (410): relisting from the latest state");
                self.stat(|st| st.expired += 1);
                self.list_from = match self.s.config.zoo.has(Bug::RelistFromCacheAfterExpired) {
                    true => "0".into(),
                    false => String::new(),
                };
            }
            Failure::Unavailable { why, .. } | Failure::Other(why) => {
                tracing::warn!(rv = %self.last_rv, %why, "list/watch failed: relisting");
                if !self.last_rv.is_empty() && !self.rv_unavailable {
                    self.list_from = self.last_rv.clone();
                }
            }
        }
        let delay = self.backoff.next_delay(Instant::now());
        tokio::time::sleep(delay).await;
    }

    /// Records a request's success (clears the failing time) or failure (sets it once).
    fn health(&self, ok: bool) {
        let mut since = self.s.failing_since.lock().expect("health lock");
        match ok {
            true => *since = None,
            false => *since = since.or_else(|| Some(Instant::now())),
        }
    }

    fn stat(&self, f: impl FnOnce(&mut super::InformerStats)) {
        f(&mut self.s.stats.lock().expect("stats lock"));
    }

    /// A list (paged when consistent), applied as a replace; a list whose RV cannot be
    /// served is sent again at once from `""`.
    async fn list(&mut self) -> Result<Option<(Stream<K>, Instant)>, Failure> {
        match self.list_once().await {
            Err(Failure::Unavailable { expired, why }) if !self.list_from.is_empty() => {
                if expired {
                    self.stat(|st| st.expired += 1);
                }
                tracing::info!(from = %self.list_from, %why, "list: resourceVersion unavailable, listing from \"\" at once");
                self.list_from = String::new();
                self.rv_unavailable = true;
                self.list_once().await
            }
            other => other,
        }
    }

    /// One list request (paged when consistent), applied as a replace.
    async fn list_once(&mut self) -> Result<Option<(Stream<K>, Instant)>, Failure> {
        let c = &self.s.config;
        let mut lp = ListParams {
            label_selector: c.label_selector.clone(),
            field_selector: c.field_selector.clone(),
            ..Default::default()
        };
        if self.list_from.is_empty() {
            lp.limit = c.page_size;
        } else {
            lp.resource_version = Some(self.list_from.clone());
        }
        self.stat(|st| st.lists += 1);
        let mut items = Vec::new();
        let rv = loop {
            let page = tokio::time::timeout(self.request_limit(), self.s.api.list(&lp))
                .await
                .map_err(|_| Failure::Other("list request outlived its deadline".into()))?
                .map_err(|e| list_failure(&e))?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|t| !t.is_empty()) {
                Some(token) => lp.continue_token = Some(token),
                None => break page.metadata.resource_version.unwrap_or_default(),
            }
        };
        self.replace(items, rv);
        Ok(None)
    }

    /// A streaming list: ADDED events until the `k8s.io/initial-events-end` bookmark, applied
    /// as a replace; the same stream then goes on as the watch.
    async fn streaming_list(&mut self) -> Result<Option<(Stream<K>, Instant)>, Failure> {
        let (wp, deadline) = self.watch_params();
        let wp = WatchParams {
            send_initial_events: true,
            ..wp
        };
        self.stat(|st| {
            st.lists += 1;
            st.watches += 1;
        });
        let mut stream = tokio::time::timeout_at(deadline, self.s.api.watch(&wp, &self.list_from))
            .await
            .map_err(|_| Failure::Other("streaming list outlived its deadline".into()))?
            .map_err(|e| list_failure(&e))?
            .boxed();
        let mut items = Vec::new();
        loop {
            let item = tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => return Err(Failure::Other("streaming list outlived its deadline".into())),
                item = stream.next() => item,
            };
            match item {
                Some(Ok(WatchEvent::Added(o))) => items.push(o),
                Some(Ok(WatchEvent::Bookmark(b)))
                    if b.metadata
                        .annotations
                        .contains_key("k8s.io/initial-events-end") =>
                {
                    self.replace(items, b.metadata.resource_version);
                    return Ok(Some((stream, deadline)));
                }
                Some(Ok(WatchEvent::Bookmark(_))) => {}
                Some(Ok(WatchEvent::Error(s))) => return Err(status_failure(&s)),
                Some(Ok(other)) => {
                    return Err(Failure::Other(format!(
                        "unexpected {other:?} during a streaming list"
                    )))
                }
                Some(Err(e)) => return Err(list_failure(&e)),
                None => {
                    return Err(Failure::Other(
                        "streaming list ended before its initial-events-end bookmark".into(),
                    ))
                }
            }
        }
    }

    fn replace(&mut self, items: Vec<K>, rv: String) {
        self.health(true);
        self.rv_unavailable = false;
        let initial = self.first;
        let objects = items.len();
        let s = &self.s;
        let mut tombstones = 0;
        s.store
            .apply_then(Change::Replace { items, initial }, |notes| {
                let is_tombstone = |n: &Notification<K>| {
                    matches!(n, Notification::Delete(DeletedObject::Unknown(_)))
                };
                tombstones = notes.iter().filter(|n| is_tombstone(n)).count();
                if s.config.zoo.has(Bug::RelistWithoutTombstones) {
                    let kept: Vec<_> = notes.iter().filter(|n| !is_tombstone(n)).cloned().collect();
                    return s.processor.distribute(&kept);
                }
                s.processor.distribute(notes)
            });
        if initial {
            tracing::info!(%rv, from = ?self.list_from, objects, "listed: synced");
            s.synced.store(true, Ordering::SeqCst);
            s.processor.synced();
            s.synced_notify.notify_waiters();
        } else {
            tracing::info!(%rv, from = ?self.list_from, objects, tombstones, "relisted");
            self.stat(|st| st.relists += 1);
        }
        self.first = false;
        self.last_rv = rv;
    }

    /// How long one list request may take before it counts as failed (a request lost on a
    /// silently dead connection never answers): the longest watch timeout plus the grace.
    fn request_limit(&self) -> Duration {
        let c = &self.s.config;
        c.min_watch_timeout * 2 + c.deadline_grace
    }

    /// `timeoutSeconds = min_watch_timeout × (1 + rand)` and the client-side deadline.
    fn watch_params(&mut self) -> (WatchParams, Instant) {
        let c = &self.s.config;
        let floor = match c.zoo.has(Bug::WatchTimeoutWithoutFloor) {
            true => 0.0,
            false => 1.0,
        };
        let timeout = c
            .min_watch_timeout
            .mul_f64(floor + self.rng.random::<f64>());
        let secs = timeout.as_secs().max(1);
        let wp = WatchParams {
            label_selector: c.label_selector.clone(),
            field_selector: c.field_selector.clone(),
            timeout: Some(secs.min(u64::from(u32::MAX)) as u32),
            bookmarks: true,
            ..Default::default()
        };
        (
            wp,
            Instant::now() + Duration::from_secs(secs) + c.deadline_grace,
        )
    }

    /// Watches from the last RV until something requires a relist.
    async fn watch(&mut self, mut pending: Option<(Stream<K>, Instant)>) -> Failure {
        loop {
            let (stream, deadline) = match pending.take() {
                Some(p) => p,
                None => match self.start_watch().await {
                    Ok(Some(p)) => p,
                    Ok(None) => continue,
                    Err(f) => match self.keep_watching(f).await {
                        Some(f) => return f,
                        None => continue,
                    },
                },
            };
            let started = Instant::now();
            let mut events = 0u64;
            match self.consume(stream, deadline, &mut events).await {
                End::Closed if events == 0 && started.elapsed() < Duration::from_secs(1) => {
                    self.stat(|st| st.short_watches += 1);
                    return Failure::Other(
                        "very short watch: it ended in under a second with no event".into(),
                    );
                }
                End::Closed => {}
                End::Deadline => {
                    self.health(false);
                    tracing::warn!(rv = %self.last_rv, "watch outlived its deadline: presumed dead")
                }
                End::Retry(why) => {
                    self.health(false);
                    tracing::warn!(rv = %self.last_rv, %why, "watch failed, re-watching after a backoff");
                    tokio::time::sleep(self.backoff.next_delay(Instant::now())).await;
                }
                End::Fail(f) => {
                    if let Some(f) = self.keep_watching(f).await {
                        return f;
                    }
                }
            }
        }
    }

    /// The failure that ends the watch phase; `None` (after a backoff) when the bug zoo's
    /// `NoRelistAfterExpired` re-watches the same RV instead.
    async fn keep_watching(&mut self, f: Failure) -> Option<Failure> {
        if !(matches!(f, Failure::Expired) && self.s.config.zoo.has(Bug::NoRelistAfterExpired)) {
            return Some(f);
        }
        self.stat(|st| st.expired += 1);
        tokio::time::sleep(self.backoff.next_delay(Instant::now())).await;
        None
    }

    /// Opens a watch; `Ok(None)` after a retryable failure (already backed off).
    async fn start_watch(&mut self) -> Result<Option<(Stream<K>, Instant)>, Failure> {
        let (wp, deadline) = self.watch_params();
        self.stat(|st| st.watches += 1);
        // A request lost on a silently dead pooled connection would never answer.
        let Ok(started) =
            tokio::time::timeout_at(deadline, self.s.api.watch(&wp, &self.last_rv)).await
        else {
            self.health(false);
            tracing::warn!(rv = %self.last_rv, "watch request outlived its deadline, retrying");
            tokio::time::sleep(self.backoff.next_delay(Instant::now())).await;
            return Ok(None);
        };
        self.health(started.is_ok());
        match started {
            Ok(stream) => Ok(Some((stream.boxed(), deadline))),
            Err(e) => match &e {
                kube::Error::Api(s) if s.code == 429 || s.code >= 500 => {
                    tokio::time::sleep(self.backoff.next_delay(Instant::now())).await;
                    Ok(None)
                }
                kube::Error::Api(s) => Err(status_failure(s)),
                kube::Error::SerdeError(_) => Err(Failure::Other(e.to_string())),
                _ => {
                    tracing::warn!(rv = %self.last_rv, error = %e, "watch could not start, retrying");
                    tokio::time::sleep(self.backoff.next_delay(Instant::now())).await;
                    Ok(None)
                }
            },
        }
    }

    async fn consume(&mut self, mut stream: Stream<K>, deadline: Instant, events: &mut u64) -> End {
        loop {
            let item = tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => return End::Deadline,
                item = stream.next() => item,
            };
            let change = match item {
                None => return End::Closed,
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => Change::Upsert(o),
                Some(Ok(WatchEvent::Deleted(o))) => Change::Delete(o),
                Some(Ok(WatchEvent::Bookmark(b))) => {
                    // A bookmark counts as an event for the "very short watch" rule, as in
                    // client-go.
                    self.last_rv = b.metadata.resource_version;
                    *events += 1;
                    continue;
                }
                Some(Ok(WatchEvent::Error(s))) => return status_end(&s),
                Some(Err(kube::Error::SerdeError(e))) => {
                    return End::Fail(Failure::Other(format!("undecodable event: {e}")))
                }
                Some(Err(kube::Error::Api(s))) => return status_end(&s),
                // A transport error mid-stream is the stream ending (client-go does the same).
                Some(Err(_)) => return End::Closed,
            };
            self.apply(change);
            *events += 1;
        }
    }

    fn apply(&mut self, change: Change<K>) {
        let obj = match &change {
            Change::Upsert(o) | Change::Delete(o) => o,
            Change::Replace { .. } => unreachable!("watch events are single changes"),
        };
        if let Some(rv) = obj.meta().resource_version.clone() {
            self.last_rv = rv;
        }
        let s = &self.s;
        s.store
            .apply_then(change, |notes| s.processor.distribute(notes));
        self.stat(|st| st.events += 1);
    }
}

fn list_failure(e: &kube::Error) -> Failure {
    match e {
        kube::Error::Api(s) if s.code == 410 || too_large_rv(s) => Failure::Unavailable {
            expired: s.code == 410,
            why: format!("{} {}: {}", s.code, s.reason, s.message),
        },
        kube::Error::Api(s) => status_failure(s),
        other => Failure::Other(other.to_string()),
    }
}

/// 504 with cause `ResourceVersionTooLarge`: the replica's cache has not reached the RV.
fn too_large_rv(s: &Status) -> bool {
    s.code == 504
        && s.details.as_ref().is_some_and(|d| {
            d.causes
                .iter()
                .any(|c| c.reason == "ResourceVersionTooLarge")
        })
}

fn status_failure(s: &Status) -> Failure {
    if s.code == 410 {
        Failure::Expired
    } else {
        Failure::Other(format!("{} {}: {}", s.code, s.reason, s.message))
    }
}

fn status_end(s: &Status) -> End {
    match s.code {
        410 => End::Fail(Failure::Expired),
        429 | 500..=599 => End::Retry(format!("{} {}", s.code, s.message)),
        _ => End::Fail(status_failure(s)),
    }
}
