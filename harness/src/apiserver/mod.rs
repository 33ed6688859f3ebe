//! The simulated kube-apiserver: an MVCC store shared by several replicas, each with its own
//! watch cache, behind one HTTP service that speaks the Kubernetes API (DESIGN.md §3).
//!
//! - [`store`]: the synchronous MVCC core ("etcd"), with [`meta`]'s object helpers.
//! - [`cache`]: a replica's watch cache (ring, lag, pause).
//! - [`http`]: routing, query validation, CRUD/list handlers, `Status` errors.
//! - [`watch`]: watch streams (initial events, bookmarks, deadlines, 410 in-stream).
//! - [`discovery`]: `/version`, `/api`, `/apis`, resource lists.
//!
//! The server is transport-agnostic: [`ApiServer::serve_connection`] serves any byte stream,
//! the turmoil glue in [`crate::net`] and the `serve` mode on a real TCP listener both use it.

mod cache;
mod discovery;
mod error;
mod hook;
mod http;
mod merge;
mod meta;
mod resource;
mod selector;
mod signal;
mod store;
mod watch;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};
use signal::Signal;

pub use cache::WatchCache;
pub use error::{ApiError, ClusterError};
pub use hook::{HookId, RequestHook, RequestInfo, Verdict};
pub use http::Body;
pub use meta::{invalid_name, timestamp};
pub use resource::{ResourceType, Resources};
pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use store::{EventType, ObjKey, Preconditions, Store, StoreEvent};

/// Knobs of a simulated cluster. Defaults follow kube-apiserver's.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of apiserver replicas (turmoil hosts `apiserver-0`, ...).
    pub replicas: usize,
    /// Events kept per replica watch cache; older watch RVs get 410.
    pub watch_cache_capacity: usize,
    /// How long a replica's cache trails the store (0 = applies at once).
    pub watch_cache_lag: Duration,
    /// `--min-request-timeout`: a watch without `timeoutSeconds` lives `× (1 + rand)` of this.
    pub min_request_timeout: Duration,
    /// How often an idle watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// How long a "not older than N" read waits for the cache before 504.
    pub not_older_than_wait: Duration,
    /// Periodic compaction (`--etcd-compaction-interval`, 5 min in kube-apiserver); `None`
    /// compacts only when told to.
    pub compaction_interval: Option<Duration>,
    /// CRDs served besides the built-ins.
    pub crds: Vec<ResourceType>,
    /// Largest request body accepted (kube-apiserver: 3 MiB).
    pub max_body_bytes: usize,
    /// Record every request, response and streamed watch line (for determinism checks).
    pub access_log: bool,
    /// Keep every write after start-up, through compaction ([`ApiServer::history`]).
    pub record_history: bool,
    /// Seed of the server's RNG (uids, generateName suffixes, watch timeouts).
    pub seed: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            watch_cache_capacity: 1024,
            watch_cache_lag: Duration::ZERO,
            min_request_timeout: Duration::from_secs(1800),
            bookmark_interval: Duration::from_secs(60),
            not_older_than_wait: Duration::from_secs(3),
            compaction_interval: None,
            crds: Vec::new(),
            max_body_bytes: 3 * 1024 * 1024,
            access_log: false,
            record_history: false,
            seed: 0,
        }
    }
}

/// Where "now" comes from: simulated time in turmoil, the wall clock only in `serve` mode.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// turmoil's simulated time since its start, plus the simulation's fixed epoch.
    Sim {
        /// The `turmoil::Builder::epoch`, as time since the UNIX epoch.
        epoch: Duration,
    },
    /// The real clock (`kube-chaos serve`).
    Wall,
}

/// Counters kept by the server (for tests, reports and load figures).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests served.
    pub requests: u64,
    /// Watch requests (streams opened, including those answered with an in-stream 410).
    pub watches: u64,
    /// List requests.
    pub lists: u64,
    /// 410 answers (in-stream or HTTP).
    pub expired: u64,
}

struct State {
    store: Store,
    caches: Vec<WatchCache>,
    rng: ChaCha8Rng,
    access_log: Vec<String>,
    next_watch_id: u64,
    stats: Stats,
    now: Duration,
    /// Per replica: bumped to end its open watches cleanly / with an in-stream 410.
    watch_control: Vec<WatchControl>,
}

/// Generations of the per-replica watch faults; a watch remembers them when it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WatchControl {
    pub(crate) dropped: u64,
    pub(crate) expired: u64,
}

struct Shared {
    config: ClusterConfig,
    /// Fault hooks, consulted before every request (kept apart from `state`: hooks may call
    /// back into the server).
    hooks: Mutex<hook::Hooks>,
    clock: Clock,
    state: Mutex<State>,
    /// Bumped on every store write and every cache-control change: wakes the cache pumps.
    store_rev: Signal,
    /// One per replica, bumped whenever that replica's cache changed: wakes its watches.
    cache_changed: Vec<Signal>,
    /// One per replica, bumped to close every open connection to it (connection reset).
    connections: Vec<Signal>,
}

/// A handle on one simulated cluster's apiserver (cheap to clone).
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("replicas", &self.shared.config.replicas)
            .finish()
    }
}

impl ApiServer {
    /// A server with the `default`, `kube-system` and `kube-public` namespaces; refuses a
    /// configuration without replicas or with a CRD declared twice.
    pub fn new(config: ClusterConfig, clock: Clock) -> Result<Self, ClusterError> {
        if config.replicas == 0 {
            return Err(ClusterError::NoReplicas);
        }
        let resources = Resources::with_crds(&config.crds)?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let store_rng = ChaCha8Rng::seed_from_u64(rng.random());
        let mut store = Store::new(resources, store_rng);
        let now = match clock {
            Clock::Sim { epoch } => epoch,
            Clock::Wall => wall_now(),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let obj = serde_json::json!({"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            store
                .create(0, "", into_map(obj), now)
                .expect("built-in namespaces are valid");
        }
        let caches = (0..config.replicas)
            .map(|_| WatchCache::new(&store, config.watch_cache_capacity, config.watch_cache_lag))
            .collect();
        let cache_changed = (0..config.replicas).map(|_| Signal::default()).collect();
        let connections = (0..config.replicas).map(|_| Signal::default()).collect();
        if config.record_history {
            store.record_history();
        }
        let state = State {
            watch_control: vec![WatchControl::default(); config.replicas],
            store,
            caches,
            rng,
            access_log: Vec::new(),
            next_watch_id: 0,
            stats: Stats::default(),
            now,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                store_rev: Signal::default(),
                hooks: Mutex::default(),
                cache_changed,
                connections,
                clock,
                config,
                state: Mutex::new(state),
            }),
        })
    }

    /// Installs a request hook (fault injection); hooks are consulted in installation order
    /// and the first verdict other than `Pass` decides.
    pub fn add_hook(&self, hook: impl RequestHook + 'static) -> HookId {
        self.shared
            .hooks
            .lock()
            .expect("hooks lock")
            .add(Arc::new(hook))
    }

    /// Removes a hook; false if it was not installed.
    pub fn remove_hook(&self, id: HookId) -> bool {
        self.shared.hooks.lock().expect("hooks lock").remove(id)
    }

    fn verdict(&self, req: &RequestInfo) -> Verdict {
        let hooks = self.shared.hooks.lock().expect("hooks lock").clone();
        hooks.verdict(req)
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.shared.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .expect("apiserver state lock poisoned")
    }

    /// Now, as time since the UNIX epoch (simulated in turmoil; monotonic).
    pub fn now(&self) -> Duration {
        let observed = match self.shared.clock {
            Clock::Sim { epoch } => turmoil::sim_elapsed().map(|e| epoch + e),
            Clock::Wall => Some(wall_now()),
        };
        let mut st = self.lock();
        if let Some(t) = observed {
            st.now = st.now.max(t);
        }
        st.now
    }

    /// Moves the simulated clock forward to `since_start` after the simulation's start, for
    /// writes made from outside any host (a scenario runner between steps). Never moves back.
    pub fn observe_elapsed(&self, since_start: Duration) {
        if let Clock::Sim { epoch } = self.shared.clock {
            let mut st = self.lock();
            st.now = st.now.max(epoch + since_start);
        }
    }

    /// The store's current revision.
    pub fn revision(&self) -> u64 {
        self.lock().store.revision()
    }

    /// The revision a replica's watch cache has applied up to.
    pub fn cache_revision(&self, replica: usize) -> u64 {
        self.lock().caches[replica].synced()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// The access log (requires [`ClusterConfig::access_log`]).
    pub fn access_log(&self) -> Vec<String> {
        self.lock().access_log.clone()
    }

    /// Compacts the store at `rev` (clamped to the current revision); returns the new
    /// compacted revision. Reads and continue tokens below it answer 410.
    pub fn compact(&self, rev: u64) -> u64 {
        let r = self.lock().store.compact(rev);
        self.poke();
        r
    }

    /// Compacts all history up to the current revision.
    pub fn compact_all(&self) -> u64 {
        self.compact(u64::MAX)
    }

    /// Sets a replica's watch-cache lag.
    pub fn set_cache_lag(&self, replica: usize, lag: Duration) {
        self.lock().caches[replica].set_lag(lag);
        self.poke();
    }

    /// Pauses a replica's watch cache: it keeps serving its current (aging) state.
    pub fn pause_cache(&self, replica: usize) {
        self.lock().caches[replica].pause();
        self.poke();
    }

    /// Resumes a paused replica's watch cache.
    pub fn resume_cache(&self, replica: usize) {
        self.lock().caches[replica].resume();
        self.poke();
    }

    /// Re-initialises a replica's watch cache from the store, as after a restart: its window
    /// restarts at the current revision and its open watches end.
    pub fn reset_cache(&self, replica: usize) {
        {
            let mut st = self.lock();
            let st = &mut *st;
            st.caches[replica].reinit(&st.store);
        }
        self.shared.cache_changed[replica].bump();
    }

    /// Ends every open watch on `replica` with a clean end of stream (a dropped watch: clients
    /// resume from their last resourceVersion).
    pub fn drop_watches(&self, replica: usize) {
        self.lock().watch_control[replica].dropped += 1;
        self.shared.cache_changed[replica].bump();
    }

    /// Ends every open watch on `replica` with an in-stream `ERROR` 410 Expired, as
    /// kube-apiserver does when a watcher falls out of its cache's window.
    pub fn expire_watches(&self, replica: usize) {
        self.lock().watch_control[replica].expired += 1;
        self.shared.cache_changed[replica].bump();
    }

    /// Closes every open connection to `replica` (clients see the connection end mid-request
    /// or mid-stream).
    pub fn reset_connections(&self, replica: usize) {
        self.shared.connections[replica].bump();
    }

    /// Every write since start-up, oldest first, kept through compaction (requires
    /// [`ClusterConfig::record_history`]; empty otherwise).
    pub fn history(&self) -> Vec<Arc<StoreEvent>> {
        self.lock().store.history().to_vec()
    }

    pub(crate) fn watch_control(&self, replica: usize) -> WatchControl {
        self.lock().watch_control[replica]
    }

    pub(crate) fn connection_resets(&self, replica: usize) -> signal::Subscriber {
        self.shared.connections[replica].subscribe()
    }

    /// Writes an object directly into the store (initial objects, workload generators):
    /// created if absent, replaced otherwise. Returns the stored object.
    pub fn put_object(&self, obj: Value) -> Result<Arc<Value>, ApiError> {
        let now = self.now();
        let out = {
            let mut st = self.lock();
            st.store.put(obj, now)
        };
        self.poke();
        out
    }

    /// Deletes an object straight from the store (workload generators, tests), honouring
    /// finalizers like an API delete. Returns the deleted (or deletion-marked) object.
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let now = self.now();
        let out = {
            let mut st = self.lock();
            let res = st
                .store
                .resources()
                .find_kind(api_version, kind)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "no resource serves apiVersion {api_version:?} kind {kind:?}"
                    ))
                })?;
            let key = ObjKey {
                res,
                ns: namespace.to_string(),
                name: name.to_string(),
            };
            st.store.delete(&key, &Preconditions::default(), now)
        };
        self.poke();
        out
    }

    /// One live object, read from the store (for workload generators and checkers).
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        let st = self.lock();
        let res = st.store.resources().find_kind(api_version, kind)?;
        let key = ObjKey {
            res,
            ns: namespace.to_string(),
            name: name.to_string(),
        };
        st.store.get(&key).cloned()
    }

    /// The live objects of a resource, read consistently from the store (for checkers).
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Arc<Value>> {
        let st = self.lock();
        let Some(res) = st.store.resources().find_kind(api_version, kind) else {
            return Vec::new();
        };
        let rev = st.store.revision();
        st.store
            .list_at(res, None, rev)
            .expect("the current revision is readable")
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Wakes the cache pumps (after a store write or a cache-control change).
    fn poke(&self) {
        self.shared.store_rev.bump();
    }

    /// Keeps replica `replica`'s watch cache applying store events; runs on the replica's host
    /// for as long as it lives. Starts by re-initialising the cache (a restarted replica has
    /// lost it).
    pub async fn run_cache_pump(self, replica: usize) {
        self.reset_cache(replica);
        let mut store_changed = self.shared.store_rev.subscribe();
        loop {
            let now = self.now();
            let step = {
                let mut st = self.lock();
                let st = &mut *st;
                st.caches[replica].catch_up(&st.store, now)
            };
            if step.changed {
                self.shared.cache_changed[replica].bump();
            }
            let wait = step.next_due.map(|due| due.saturating_sub(now));
            tokio::select! {
                biased;
                _ = store_changed.changed() => {}
                _ = sleep_or_forever(wait) => {}
            }
        }
    }

    /// Compacts the store periodically (if configured): every interval, at the revision seen
    /// one interval earlier, so at least one interval of history stays readable.
    pub async fn run_compactor(self) {
        let Some(every) = self.shared.config.compaction_interval else {
            return std::future::pending().await;
        };
        let mut seen = self.revision();
        loop {
            tokio::time::sleep(every).await;
            self.compact(seen);
            seen = self.revision();
        }
    }

    fn record(&self, line: impl FnOnce() -> String) {
        if self.shared.config.access_log {
            let line = line();
            self.lock().access_log.push(line);
        }
    }

    fn random_fraction(&self) -> f64 {
        self.lock().rng.random::<f64>()
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A JSON object's map; anything else becomes an empty map.
fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
