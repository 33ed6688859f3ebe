//! Informer: a reflector that lists then watches one resource, a shared store with indexes,
//! and handlers fed from that one watch (client-go's `SharedIndexInformer`).
//!
//! - **Reflector** ([`reflector`](self) internals): first list at `"0"` (any replica cache;
//!   see [`InitialList`] for the time-travel hazard and its fix), then watch from the list's
//!   RV with bookmarks and `timeoutSeconds = min_watch_timeout × (1 + rand)`; a normal end
//!   re-watches from the last RV; a watch that ends in under a second with no event (a
//!   bookmark counts as one) is a failure; other failures back off (800 ms doubling to 30 s,
//!   jitter, reset after 2 min healthy) and relist from the last synced RV. A list the
//!   server cannot serve at its RV (410, or 504 `ResourceVersionTooLarge` from a lagging
//!   replica) is sent again at once from `""`, which sticks until a list succeeds
//!   (client-go's). **Our choice, not client-go's:** an in-stream 410 relists from `""`;
//!   client-go relists from its last RV and drops to `""` only if that fails too.
//!   Optionally the list is a streaming list (`sendInitialEvents`).
//! - **Store** ([`Store`]): objects by `namespace/name`, the `namespace` index and custom
//!   ones. A relist diffs against it: vanished objects reach `on_delete` as a
//!   [`DeletedFinalStateUnknown`] tombstone, and an object found under a known key with
//!   another uid (deleted and re-created meanwhile) is a tombstone for the old one and an add
//!   for the new one.
//! - **Handlers** ([`ResourceEventHandler`], [`HandlerFns`]): `on_add(obj,
//!   is_in_initial_list)`, `on_update(old, new)`, `on_delete(obj | tombstone)`, each on its own
//!   queue; a handler added after start first gets synthetic adds for the store's content.
//!
//! ```no_run
//! # async fn demo(api: kube::Api<k8s_openapi::api::core::v1::ConfigMap>) {
//! use std::sync::Arc;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_chaos::informer::{HandlerFns, Informer, InformerConfig};
//!
//! let informer = Informer::new(api, InformerConfig::default());
//! informer.add_handler(HandlerFns::new().on_add(|cm: &Arc<ConfigMap>, initial| {
//!     println!("add {:?} {initial}", cm.metadata.name)
//! }));
//! let run = tokio::spawn({ let i = informer.clone(); async move { i.run().await } });
//! informer.wait_for_sync().await;
//! println!("{} ConfigMaps cached", informer.store().len());
//! informer.stop();
//! run.await.unwrap();
//! # }
//! ```

mod handler;
mod reflector;
mod store;

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

pub use handler::{HandlerFns, HandlerRegistration, ResourceEventHandler};
pub use store::{
    object_key, DeletedFinalStateUnknown, DeletedObject, IndexExists, IndexFn, Store,
    NAMESPACE_INDEX,
};

use crate::stop::StopHandle;
use handler::Processor;
use store::Notification;

/// Where the informer's first list reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialList {
    /// `resourceVersion="0"`: any replica's cache, however stale (client-go's default). After
    /// a restart the informer can see objects *older* than what the previous process saw —
    /// time travel.
    #[default]
    Any,
    /// `resourceVersion=""`: a consistent read of the latest state.
    Consistent,
    /// Not older than this RV (e.g. the last RV the previous process persisted).
    NotOlderThan(u64),
}

/// Knobs of an informer.
#[derive(Debug, Clone)]
pub struct InformerConfig {
    /// Watches ask for `timeoutSeconds = min_watch_timeout × (1 + rand)` (client-go: 5 min).
    pub min_watch_timeout: Duration,
    /// How long past its timeout a stream that has not ended is declared dead.
    pub deadline_grace: Duration,
    /// Where the first list reads from.
    pub initial_list: InitialList,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// Page size of consistent lists (`None`: one request).
    pub page_size: Option<u32>,
    /// List with a streaming watch (`sendInitialEvents`) instead of a list request.
    pub streaming_list: bool,
    /// Every handler gets `on_update(obj, obj)` for every cached object this often.
    pub resync_period: Option<Duration>,
    /// Seed for watch timeouts and backoff jitter (`None`: process randomness).
    pub seed: Option<u64>,
    /// The bug zoo's switch (always off outside the kube-chaos harness).
    #[doc(hidden)]
    pub zoo: crate::zoo::Zoo,
}

impl Default for InformerConfig {
    fn default() -> Self {
        Self {
            min_watch_timeout: Duration::from_secs(300),
            deadline_grace: Duration::from_secs(30),
            initial_list: InitialList::Any,
            label_selector: None,
            field_selector: None,
            page_size: Some(500),
            streaming_list: false,
            resync_period: None,
            seed: None,
            zoo: crate::zoo::Zoo::default(),
        }
    }
}

/// Counters of one informer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InformerStats {
    /// List requests (pages count once per list).
    pub lists: u64,
    /// Watch requests.
    pub watches: u64,
    /// Lists after the first.
    pub relists: u64,
    /// 410 Expired answers.
    pub expired: u64,
    /// ADDED / MODIFIED / DELETED events applied from watches.
    pub events: u64,
    /// Watches that ended in under a second with no event.
    pub short_watches: u64,
}

pub(crate) struct Shared<K> {
    api: Api<K>,
    config: InformerConfig,
    store: Store<K>,
    processor: Processor<K>,
    synced: AtomicBool,
    synced_notify: Notify,
    stop: StopHandle,
    stats: Mutex<InformerStats>,
    /// Since when lists/watches have been failing (cleared by a successful list or watch).
    failing_since: Mutex<Option<tokio::time::Instant>>,
}

/// A shared informer (cheap to clone; clones share everything).
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("synced", &self.shared.synced.load(Ordering::SeqCst))
            .finish()
    }
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// An informer over `api` (which fixes the namespace, or all namespaces).
    pub fn new(api: Api<K>, config: InformerConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                api,
                config,
                store: Store::new(),
                processor: Processor::default(),
                synced: AtomicBool::new(false),
                synced_notify: Notify::new(),
                stop: StopHandle::default(),
                stats: Mutex::default(),
                failing_since: Mutex::default(),
            }),
        }
    }

    /// The shared store.
    pub fn store(&self) -> Store<K> {
        self.shared.store.clone()
    }

    /// Adds an index to the store (also over what it already holds).
    pub fn add_indexer(
        &self,
        name: &str,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Result<(), IndexExists> {
        self.shared.store.add_indexer(name, f)
    }

    /// Registers a handler. Registered after the informer has listed, it first gets a
    /// synthetic `on_add(obj, true)` for every cached object. Must be called inside a tokio
    /// runtime (the handler gets its own task).
    pub fn add_handler(&self, handler: impl ResourceEventHandler<K>) -> HandlerRegistration {
        let s = &self.shared;
        let late_misses = s.config.zoo.has(crate::zoo::Bug::LateHandlerMissesExisting);
        s.store.with_items(|items| {
            let initial = items
                .values()
                .filter(|_| !late_misses)
                .map(|o| Notification::Add {
                    obj: o.clone(),
                    initial: true,
                })
                .collect();
            s.processor
                .add(Box::new(handler), initial, s.synced.load(Ordering::SeqCst))
        })
    }

    /// Whether the first list has been applied.
    pub fn has_synced(&self) -> bool {
        self.shared.synced.load(Ordering::SeqCst)
    }

    /// Waits for the first list; false if the informer was stopped first.
    pub async fn wait_for_sync(&self) -> bool {
        loop {
            let notified = self.shared.synced_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_synced() {
                return true;
            }
            tokio::select! {
                biased;
                _ = self.shared.stop.stopped() => return self.has_synced(),
                _ = notified => {}
            }
        }
    }

    /// Runs the reflector (and resync) until [`stop`](Self::stop).
    pub async fn run(&self) {
        let resync = self
            .shared
            .config
            .resync_period
            .map(|p| self.resync_loop(p));
        let reflector = reflector::run(self.shared.clone());
        match resync {
            Some(r) => {
                tokio::select! {
                    biased;
                    _ = reflector => {}
                    _ = r => {}
                }
            }
            None => reflector.await,
        }
        self.shared.processor.close();
    }

    async fn resync_loop(&self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            let s = &self.shared;
            s.store.with_items(|items| {
                let notes: Vec<_> = items
                    .values()
                    .map(|o| Notification::Update {
                        old: o.clone(),
                        new: o.clone(),
                    })
                    .collect();
                s.processor.distribute(&notes);
            });
        }
    }

    /// Stops the informer: `run` returns and handler tasks end once drained. Idempotent.
    pub fn stop(&self) {
        self.shared.stop.stop();
    }

    /// A handle that stops the informer from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.shared.stop.clone()
    }

    /// Since when the reflector's lists or watches have been failing; `None` while the last
    /// list or watch request succeeded (a controller's liveness reads this).
    pub fn failing_since(&self) -> Option<tokio::time::Instant> {
        *self.shared.failing_since.lock().expect("health lock")
    }

    /// Counters so far.
    pub fn stats(&self) -> InformerStats {
        self.shared.stats.lock().expect("stats lock").clone()
    }
}
