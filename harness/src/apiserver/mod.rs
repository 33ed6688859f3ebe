//! The simulated kube-apiserver: an MVCC store shared by several replicas, each with its own
//! watch cache, behind one HTTP service that speaks the Kubernetes API (DESIGN.md §3).
//!
//! Files, in the order a request flows through them (arrows point down only):
//! - `connection.rs`: HTTP/1.1 on any byte stream; each request checked for the bearer token
//!   (when configured), counted, put to the hooks' [`Verdict`] (`hook.rs`), dispatched, and
//!   written to the access log.
//! - `routing.rs`: what a path names, and the dispatch to a handler.
//! - `discovery.rs`: `/version`, `/api`, `/apis`, resource lists; `openapi.rs`: `/openapi/v2`
//!   and `/openapi/v3` from k8s-openapi's schemas and CRDs' `openAPIV3Schema`.
//! - `list.rs`: list planning (cache or store, exact revisions), pagination, continue tokens.
//! - `watch.rs`: watch requests, where a stream starts, and its loop (initial events,
//!   bookmarks, deadlines, 410 in-stream); `table.rs`: `as=Table` for lists, objects, events;
//!   `partial.rs`: `as=PartialObjectMetadata(List)`, metadata-only answers.
//! - `object.rs`: create, get, update, patch, delete, on an object or its `/status`, with the
//!   write options (dry run, strict validation); `patch.rs`: merge, JSON and strategic merge
//!   patch; `apply.rs`: server-side apply and managed fields; `scale.rs`: `/scale`;
//!   `validate.rs`: `fieldValidation=Strict`; `crd.rs`: CRDs written through the API;
//!   `namespace.rs`: namespace termination; `propagation.rs`: a delete's propagation policy.
//! - `query.rs` and `body.rs`: query parameters and write options, request and response
//!   bodies; `protobuf.rs`: protobuf bodies (k8s-pb) for kubectl's generators.
//! - `store.rs`: the synchronous MVCC core ("etcd"), with `meta.rs`'s object helpers;
//!   `cache.rs`: a replica's watch cache (ring, lag, pause); `selector.rs`: label and field
//!   selectors; `resource.rs`: the served types; `error.rs`: `Status` errors and
//!   [`ClusterError`].
//! - `control.rs`: fault controls (compaction, cache lag/pause, dropped and expired watches,
//!   connection resets) and the background tasks (cache pump, compactor); `gc.rs`: the
//!   garbage collector (ownerReferences, background, foreground, orphan); `direct.rs`: reads
//!   and writes that bypass HTTP, `typed.rs` the same for typed objects; `signal.rs`:
//!   deterministic wake-ups.
//!
//! This file holds the configuration, the shared state behind one lock, and the few
//! accessors through which the other files reach it.
//!
//! The server is transport-agnostic: [`ApiServer::serve_connection`] serves any byte stream,
//! the turmoil glue in [`crate::net`] and the `serve` mode on a real TCP listener both use it.

mod apply;
mod body;
mod cache;
mod connection;
mod control;
mod crd;
mod direct;
mod discovery;
mod error;
mod gc;
mod hook;
mod list;
mod meta;
mod namespace;
mod object;
mod openapi;
mod partial;
mod patch;
mod propagation;
mod protobuf;
mod query;
mod resource;
mod routing;
mod scale;
mod selector;
mod signal;
mod store;
mod table;
mod typed;
mod validate;
mod watch;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};
use signal::Signal;

pub use body::Body;
pub use cache::WatchCache;
pub use error::{ApiError, ClusterError};
pub use hook::{HookId, RequestHook, RequestInfo, Verdict};
pub use meta::{invalid_name, timestamp};
pub use resource::{ResourceType, Resources};
pub use selector::{FieldSelector, LabelSelector, SelectorError};
pub use store::{EventType, ObjKey, Preconditions, Store, StoreEvent};
pub use typed::TypedError;
pub use watch::watch_event_line;

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
    /// When set, every request must carry `Authorization: Bearer <token>` (401 otherwise);
    /// `kube-chaos serve --token`.
    pub bearer_token: Option<String>,
    /// Record every request, response and streamed watch line (for determinism checks).
    pub access_log: bool,
    /// Keep every write after start-up, through compaction ([`ApiServer::history`]).
    pub record_history: bool,
    /// Seed of the server's RNG (uids, generateName suffixes, watch timeouts).
    pub seed: u64,
    /// How long after a write the garbage collector acts on it (`gc.rs`; the latency of
    /// kube-controller-manager's informers).
    pub gc_delay: Duration,
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
            bearer_token: None,
            access_log: false,
            record_history: false,
            seed: 0,
            gc_delay: Duration::from_millis(100),
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
    /// The garbage collector's graph and work (`gc.rs`).
    gc: gc::Collector,
    /// When each watch was answered with a 410 (in-stream), oldest first.
    expired_sent: Vec<Duration>,
}

/// Generations of the per-replica watch faults; a watch remembers them when it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct WatchControl {
    dropped: u64,
    expired: u64,
    /// Bumped to end open watches with an in-stream `ERROR` of `error`.
    errored: u64,
    /// The (code, retryAfterSeconds) of the last in-stream error fault.
    error: (u16, Option<u32>),
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
    /// Bumped when a write gave the garbage collector work: wakes it (and nothing else: an
    /// idle collector never runs, so it leaves the schedule of a run without owners alone).
    gc_work: Signal,
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
            gc: gc::Collector::new(config.gc_delay),
            expired_sent: Vec::new(),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                store_rev: Signal::default(),
                gc_work: Signal::default(),
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

    /// Every write since start-up, oldest first, kept through compaction (requires
    /// [`ClusterConfig::record_history`]; empty otherwise).
    pub fn history(&self) -> Vec<Arc<StoreEvent>> {
        self.lock().store.history().to_vec()
    }

    /// Replica `replica`'s watch-fault generations.
    fn watch_control(&self, replica: usize) -> WatchControl {
        self.lock().watch_control[replica]
    }

    /// Fires when replica `replica`'s connections are reset.
    fn connection_resets(&self, replica: usize) -> signal::Subscriber {
        self.shared.connections[replica].subscribe()
    }

    /// The resource type at index `res`.
    fn resource(&self, res: usize) -> ResourceType {
        self.lock().store.resources().get(res).clone()
    }

    /// Every served resource type.
    fn resources(&self) -> Resources {
        self.lock().store.resources().clone()
    }

    /// Reads the store under the lock.
    fn read<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.lock().store)
    }

    /// Runs a store write and wakes the replicas' cache pumps if it succeeded.
    fn write<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let out = f(&mut self.lock().store);
        if out.is_ok() {
            self.poke();
        }
        out
    }

    /// Runs a store change and wakes the cache pumps whatever it returned (harness-side
    /// writes, compaction).
    fn write_and_poke<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let out = f(&mut self.lock().store);
        self.poke();
        out
    }

    /// Runs `f` on replica `replica`'s watch cache, with the store beside it.
    fn with_cache<T>(&self, replica: usize, f: impl FnOnce(&mut WatchCache, &Store) -> T) -> T {
        let mut st = self.lock();
        let st = &mut *st;
        f(&mut st.caches[replica], &st.store)
    }

    /// Bumps counters.
    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.lock().stats);
    }

    /// Counts a 410 sent on a watch stream, and when.
    fn count_expired(&self) {
        let now = self.now();
        let mut st = self.lock();
        st.stats.expired += 1;
        st.expired_sent.push(now);
    }

    /// When the server sent each in-stream 410 (server timestamps), oldest first: the
    /// expiries a client may honestly report.
    pub fn expired_sent(&self) -> Vec<Duration> {
        self.lock().expired_sent.clone()
    }

    /// Counts a watch stream opened and returns its id (for the access log).
    fn open_watch(&self) -> u64 {
        let mut st = self.lock();
        st.stats.watches += 1;
        st.next_watch_id += 1;
        st.next_watch_id
    }

    /// Changes replica `replica`'s watch-fault generations (then [`Self::notify_watches`]).
    fn change_watch_control(&self, replica: usize, f: impl FnOnce(&mut WatchControl)) {
        f(&mut self.lock().watch_control[replica]);
    }

    /// Wakes the cache pumps (after a store write or a cache-control change), and the
    /// garbage collector if the writes since the last look gave it work.
    fn poke(&self) {
        let gc_work = {
            let mut st = self.lock();
            let st = &mut *st;
            st.gc.observe(&st.store, st.now)
        };
        self.shared.store_rev.bump();
        if gc_work {
            self.shared.gc_work.bump();
        }
    }

    /// Wakes replica `replica`'s open watches (and waits for its cache) to look again.
    fn notify_watches(&self, replica: usize) {
        self.shared.cache_changed[replica].bump();
    }

    /// Changes of replica `replica`'s watch cache (and of its watch controls).
    fn cache_changes(&self, replica: usize) -> signal::Subscriber {
        self.shared.cache_changed[replica].subscribe()
    }

    /// Appends `"<t> r<replica> <what>"` to the access log; `what` is built only when the
    /// log is on.
    fn log_access(&self, t: Duration, replica: usize, what: impl FnOnce() -> String) {
        if self.shared.config.access_log {
            let line = format!("{} r{replica} {}", fmt_time(t), what());
            self.lock().access_log.push(line);
        }
    }

    /// A fraction in `[0, 1)` from the server's seeded RNG.
    fn random_fraction(&self) -> f64 {
        self.lock().rng.random::<f64>()
    }
}

/// Simulated seconds with millisecond precision, for logs.
fn fmt_time(t: Duration) -> String {
    format!("{}.{:03}", t.as_secs(), t.subsec_millis())
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
