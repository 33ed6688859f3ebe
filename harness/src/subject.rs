//! Systems under test: our runtime, kube-runtime's, and deliberately wrong ones. Each runs
//! as one instance on a simulated host, talks to the cluster through a real `kube::Client`,
//! and records what it delivered in the run's [`Recorder`].

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, WatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::{Api, Resource};
use kube_chaos::backoff::Backoff;
use kube_chaos::informer::{
    DeletedObject, HandlerFns, Informer, InformerConfig, InformerStats, InitialList,
};
use kube_chaos::retry_watcher::{
    self, RetryWatcher, RetryWatcherConfig, WatchFuture, WatchOptions,
};
use kube_chaos::zoo::{Bug, Zoo};

use crate::fault::Controls;
use crate::scenario::{FirstList, SubjectConfig};
use crate::trace::{Delivery, Held, Record, Recorder};

/// What a subject is, which decides the checkers that judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Delivers a single ordered watch stream (RetryWatcher-like).
    Watcher,
    /// Keeps a cache and calls handlers (informer-like).
    Informer,
    /// Reconciles keys (controller-like).
    Controller,
}

/// Everything one subject instance gets.
#[derive(Clone)]
pub struct Ctx {
    /// Instance index (across hosts).
    pub instance: usize,
    /// Restarts of this instance so far.
    pub incarnation: u32,
    /// A client for the simulated cluster.
    pub client: kube::Client,
    /// The scenario's knobs.
    pub config: SubjectConfig,
    /// Seed for this instance and incarnation.
    pub seed: u64,
    /// Where to record what it does.
    pub recorder: Recorder,
    /// Controller faults the runner turns on and off.
    pub controls: Controls,
    /// The runtime bug this subject runs with (bug-zoo subjects only).
    pub zoo: Zoo,
}

impl Ctx {
    /// This context with `bug` turned on in the runtime components the subject builds.
    fn with(mut self, bug: Bug) -> Self {
        self.zoo = Zoo::with(bug);
        self
    }

    fn record(&self, record: Record) {
        self.recorder.record(Some(self.instance), record);
    }

    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), "default")
    }
}

/// A registered subject.
pub struct Descriptor {
    /// Name used in scenario files.
    pub name: &'static str,
    /// What it is.
    pub kind: Kind,
    /// One line for `kube-chaos subjects`.
    pub about: &'static str,
    /// A bug-zoo subject: our runtime with one known bug, which exploration must find.
    pub zoo: bool,
    /// Runs one instance until its host stops.
    pub run: fn(Ctx) -> BoxFuture<'static, ()>,
}

impl std::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Descriptor")
            .field("name", &self.name)
            .finish()
    }
}

static SUBJECTS: &[Descriptor] = &[
    Descriptor {
        name: "retry-watcher",
        kind: Kind::Watcher,
        about: "kube-chaos RetryWatcher from Api<ConfigMap>, started after a consistent list",
        zoo: false,
        run: |c| retry_watcher_subject(c, false).boxed(),
    },
    Descriptor {
        name: "informer",
        kind: Kind::Informer,
        about: "kube-chaos informer (reflector, store, handlers) on ConfigMaps",
        zoo: false,
        run: |c| informer_subject(c, false).boxed(),
    },
    Descriptor {
        name: "kube-runtime-watcher",
        kind: Kind::Informer,
        about: "kube-runtime's watcher + reflector with a seeded backoff, events mapped to handler calls",
        zoo: false,
        run: |c| kube_runtime_watcher_subject(c).boxed(),
    },
    Descriptor {
        name: "controller",
        kind: Kind::Controller,
        about: "the mirror controller on kube-chaos's informer, workqueue and worker pool",
        zoo: false,
        run: |c| crate::subject_controller::ours(c).boxed(),
    },
    Descriptor {
        name: "kube-runtime-controller",
        kind: Kind::Controller,
        about: "kube-runtime's Controller (seeded backoffs) running the mirror reconcile",
        zoo: false,
        run: |c| crate::subject_controller::kube_runtime(c).boxed(),
    },
    // The bug zoo: each is one of the above with one known bug.
    Descriptor {
        name: "retry-watcher-ignoring-options",
        kind: Kind::Watcher,
        about: "RetryWatcher whose watch function drops the resourceVersion it is given (replays history)",
        zoo: true,
        run: |c| retry_watcher_subject(c, true).boxed(),
    },
    Descriptor {
        name: "retry-watcher-reconnect-from-empty",
        kind: Kind::Watcher,
        about: "RetryWatcher that reconnects from \"\" instead of its last resourceVersion",
        zoo: true,
        run: |c| retry_watcher_subject(c.with(Bug::ReconnectFromEmpty), false).boxed(),
    },
    Descriptor {
        name: "informer-no-relist-after-410",
        kind: Kind::Informer,
        about: "informer that re-watches the same resourceVersion after a 410 instead of relisting",
        zoo: true,
        run: |c| informer_subject(c.with(Bug::NoRelistAfterExpired), false).boxed(),
    },
    Descriptor {
        name: "informer-relist-without-tombstones",
        kind: Kind::Informer,
        about: "informer whose relist drops objects that vanished without telling the handlers",
        zoo: true,
        run: |c| informer_subject(c.with(Bug::RelistWithoutTombstones), false).boxed(),
    },
    Descriptor {
        name: "informer-late-handler",
        kind: Kind::Informer,
        about: "informer whose handler, added after the first list, gets no adds for cached objects",
        zoo: true,
        run: |c| informer_subject(c.with(Bug::LateHandlerMissesExisting), true).boxed(),
    },
    Descriptor {
        name: "controller-no-processing-set",
        kind: Kind::Controller,
        about: "mirror controller whose workqueue hands a key in flight to a second worker",
        zoo: true,
        run: |c| crate::subject_controller::ours(c.with(Bug::NoProcessingSet)).boxed(),
    },
    Descriptor {
        name: "controller-drops-readd",
        kind: Kind::Controller,
        about: "mirror controller whose workqueue drops a key added while it is being reconciled",
        zoo: true,
        run: |c| crate::subject_controller::ours(c.with(Bug::DropReaddDuringProcessing)).boxed(),
    },
    Descriptor {
        name: "controller-unlimited-requeue",
        kind: Kind::Controller,
        about: "mirror controller that requeues a failed key at once, without the rate limiter",
        zoo: true,
        run: |c| crate::subject_controller::ours(c.with(Bug::UnlimitedRequeue)).boxed(),
    },
    Descriptor {
        name: "controller-no-dead-letter",
        kind: Kind::Controller,
        about: "mirror controller whose retries never reach max_retries and the dead letter",
        zoo: true,
        run: |c| crate::subject_controller::ours(c.with(Bug::NoDeadLetter)).boxed(),
    },
];

/// Every subject, in the order `kube-chaos subjects` lists them.
pub fn all() -> &'static [Descriptor] {
    SUBJECTS
}

/// The subject called `name`.
pub fn find(name: &str) -> Option<&'static Descriptor> {
    all().iter().find(|d| d.name == name)
}

fn key_of<K: Resource>(o: &K) -> String {
    format!(
        "{}/{}",
        o.meta().namespace.as_deref().unwrap_or(""),
        o.meta().name.as_deref().unwrap_or("")
    )
}

fn rv_of<K: Resource>(o: &K) -> u64 {
    o.meta()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn held<'a, K: Resource + 'a>(objects: impl IntoIterator<Item = &'a K>) -> Held {
    objects
        .into_iter()
        .map(|o| {
            (
                key_of(o),
                (rv_of(o), o.meta().uid.clone().unwrap_or_default()),
            )
        })
        .collect()
}

/// Lists until it works (the subject's start RV), retrying every second.
async fn start_rv(ctx: &Ctx) -> String {
    let lp = ListParams {
        label_selector: ctx.config.label_selector.clone(),
        ..ListParams::default()
    };
    loop {
        match ctx.api().list_metadata(&lp).await {
            Ok(list) => {
                let rv = list.metadata.resource_version.unwrap_or_default();
                let count = list.items.len();
                ctx.record(Record::Listed {
                    rv: rv.parse().unwrap_or(0),
                    count,
                });
                return rv;
            }
            Err(e) => ctx.record(Record::Error {
                message: e.to_string(),
                kind: "Other",
            }),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn error_kind(e: &retry_watcher::Error) -> &'static str {
    match e {
        retry_watcher::Error::Expired { .. } => "Expired",
        retry_watcher::Error::HistoricalReplay { .. } => "HistoricalReplay",
        _ => "Other",
    }
}

/// The documented pitfall: a watch function that builds fresh options, dropping the
/// resourceVersion (and bookmarks) it was asked for.
fn ignoring_options(api: Api<ConfigMap>) -> impl FnMut(WatchOptions) -> WatchFuture<ConfigMap> {
    move |options: WatchOptions| {
        let api = api.clone();
        async move {
            let params = WatchParams {
                label_selector: options.label_selector,
                timeout: options.timeout_seconds,
                ..WatchParams::default()
            };
            Ok(api.watch(&params, "").await?.boxed())
        }
        .boxed()
    }
}

async fn retry_watcher_subject(ctx: Ctx, ignore_options: bool) {
    let rv = start_rv(&ctx).await;
    let config = RetryWatcherConfig {
        timeout: ctx.config.watch_timeout.0,
        label_selector: ctx.config.label_selector.clone(),
        seed: Some(ctx.seed),
        zoo: ctx.zoo,
        ..RetryWatcherConfig::default()
    };
    let watcher = if ignore_options {
        RetryWatcher::new(&rv, ignoring_options(ctx.api()), config)
    } else {
        RetryWatcher::from_api(ctx.api(), &rv, config)
    };
    let mut watcher = watcher.expect("the start RV comes from a list");
    while let Some(item) = watcher.next().await {
        match item {
            Ok(ev) => {
                let o = ev.object();
                ctx.record(Record::Delivered {
                    how: Delivery::Event(ev.kind()),
                    key: key_of(o),
                    rv: rv_of(o),
                });
            }
            Err(e) => {
                ctx.record(Record::Error {
                    message: e.to_string(),
                    kind: error_kind(&e),
                });
            }
        }
    }
    std::future::pending::<()>().await;
}

fn informer_config(ctx: &Ctx) -> InformerConfig {
    InformerConfig {
        min_watch_timeout: ctx.config.min_watch_timeout.0,
        initial_list: match ctx.config.first_list {
            FirstList::Any => InitialList::Any,
            FirstList::Consistent => InitialList::Consistent,
        },
        label_selector: ctx.config.label_selector.clone(),
        seed: Some(ctx.seed),
        zoo: ctx.zoo,
        ..InformerConfig::default()
    }
}

pub(crate) fn recording_handler(ctx: &Ctx) -> HandlerFns<ConfigMap> {
    let (a, u, d) = (ctx.clone(), ctx.clone(), ctx.clone());
    HandlerFns::new()
        .on_add(move |o, initial| {
            a.record(Record::Delivered {
                how: Delivery::Add { initial },
                key: key_of(&**o),
                rv: rv_of(&**o),
            });
        })
        .on_update(move |old, new| {
            let how = Delivery::Update {
                old_rv: rv_of(&**old),
            };
            u.record(Record::Delivered {
                how,
                key: key_of(&**new),
                rv: rv_of(&**new),
            });
        })
        .on_delete(move |o| {
            let tombstone = matches!(o, DeletedObject::Unknown(_));
            let obj = o.object();
            d.record(Record::Delivered {
                how: Delivery::Delete { tombstone },
                key: key_of(&**obj),
                rv: rv_of(&**obj),
            });
        })
}

/// Adds the informer's counters to the run's when the instance ends (crash or end of run).
struct StatsOnDrop(Informer<ConfigMap>, Recorder);

impl Drop for StatsOnDrop {
    fn drop(&mut self) {
        let InformerStats { relists, .. } = self.0.stats();
        self.1.count("relists", relists);
    }
}

/// `late_handler`: the recording handler is added once the informer has synced (it must
/// then get a synthetic add for every cached object).
async fn informer_subject(ctx: Ctx, late_handler: bool) {
    let informer = Informer::new(ctx.api(), informer_config(&ctx));
    if late_handler {
        let (i, ctx) = (informer.clone(), ctx.clone());
        tokio::spawn(async move {
            if i.wait_for_sync().await {
                i.add_handler(recording_handler(&ctx));
            }
        });
    } else {
        informer.add_handler(recording_handler(&ctx));
    }
    let store = informer.store();
    ctx.recorder.set_final_view(ctx.instance, move || {
        held(store.list().iter().map(|o| &**o))
    });
    let _stats = StatsOnDrop(informer.clone(), ctx.recorder.clone());
    informer.run().await;
    std::future::pending::<()>().await;
}

/// kube-runtime's watcher events, told in handler terms: what a consumer of the stream sees.
/// Objects that vanish during a relist get no event (kube-runtime's `InitDone` only swaps the
/// reflector's store), so none is recorded.
struct RuntimeView {
    ctx: Ctx,
    known: BTreeMap<String, u64>,
    lists: u64,
}

impl RuntimeView {
    fn apply(&mut self, o: &ConfigMap, initial: bool) {
        let (key, rv) = (key_of(o), rv_of(o));
        let how = match self.known.insert(key.clone(), rv) {
            Some(old_rv) => Delivery::Update { old_rv },
            None => Delivery::Add { initial },
        };
        self.ctx.record(Record::Delivered { how, key, rv });
    }

    fn event(&mut self, ev: watcher::Event<ConfigMap>) {
        match ev {
            watcher::Event::Init => {
                self.lists += 1;
            }
            watcher::Event::InitApply(o) => self.apply(&o, self.lists == 1),
            // kube-runtime swaps the reflector's store here; objects missing from the new
            // list vanish from it without an event, so the consumer keeps believing in them.
            watcher::Event::InitDone => {}
            watcher::Event::Apply(o) => self.apply(&o, false),
            watcher::Event::Delete(o) => {
                self.known.remove(&key_of(&o));
                let how = Delivery::Delete { tombstone: false };
                self.ctx.record(Record::Delivered {
                    how,
                    key: key_of(&o),
                    rv: rv_of(&o),
                });
            }
        }
    }
}

impl Drop for RuntimeView {
    fn drop(&mut self) {
        self.ctx
            .recorder
            .count("relists", self.lists.saturating_sub(1));
    }
}

async fn kube_runtime_watcher_subject(ctx: Ctx) {
    let (reader, writer) = reflector::store::<ConfigMap>();
    let timeout = u32::try_from(ctx.config.watch_timeout.0.as_secs()).unwrap_or(u32::MAX);
    let mut config = watcher::Config::default().timeout(timeout);
    if let Some(l) = &ctx.config.label_selector {
        config = config.labels(l);
    }
    if ctx.config.first_list == FirstList::Any {
        config = config.any_semantic();
    }
    let stream = watcher(ctx.api(), config).backoff(Backoff::reflector(Some(ctx.seed)));
    let mut stream = reflector(writer, stream).boxed();
    ctx.recorder.set_final_view(ctx.instance, move || {
        held(reader.state().iter().map(|o| &**o))
    });
    let mut view = RuntimeView {
        ctx: ctx.clone(),
        known: BTreeMap::new(),
        lists: 0,
    };
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => view.event(ev),
            Err(e) => ctx.record(Record::Error {
                message: e.to_string(),
                kind: "Other",
            }),
        }
    }
}

/// The seed of one instance's incarnation (distinct per instance and restart).
pub(crate) fn instance_seed(seed: u64, instance: usize, incarnation: u32) -> u64 {
    seed ^ (instance as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (u64::from(incarnation) << 48)
}
