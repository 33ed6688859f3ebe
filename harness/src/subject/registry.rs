//! The registry of subjects: every name a scenario may use, with its kind and its code.

use futures::future::BoxFuture;
use std::sync::Mutex;

use futures::FutureExt;
use kube_chaos::zoo::Bug;

use super::feed::Feed;
use super::{controller, hash_order, informer, runtime_watcher, watcher, Ctx, UserSubject};
use crate::scenario::{Catalog, SubjectKind};

/// A registered subject.
pub struct Descriptor {
    /// Name used in scenario files.
    pub name: &'static str,
    /// What it is.
    pub kind: SubjectKind,
    /// One line for `kube-chaos subjects`.
    pub about: &'static str,
    /// A bug-zoo subject: our runtime with one known bug, which exploration must find.
    pub zoo: bool,
    /// Runs one instance until its host stops.
    pub run: Run,
}

/// How a subject's instance runs.
#[derive(Clone, Copy)]
pub enum Run {
    /// A function of the harness (ours, kube-runtime's, the zoo).
    Fn(fn(Ctx) -> BoxFuture<'static, ()>),
    /// A user's controller ([`register`]).
    User(&'static UserSubject),
}

impl Run {
    /// One instance's incarnation (a user's controller gets a fresh shutdown trigger).
    pub fn start(self, ctx: Ctx) -> BoxFuture<'static, ()> {
        match self {
            Run::Fn(f) => f(ctx),
            Run::User(user) => {
                let shutdown = ctx.controls.shutdown_trigger();
                super::user::run(ctx, user, shutdown).boxed()
            }
        }
    }
}

impl Descriptor {
    /// The user's controller, if this is one.
    pub fn user(&self) -> Option<&'static UserSubject> {
        match self.run {
            Run::Fn(_) => None,
            Run::User(u) => Some(u),
        }
    }
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
        kind: SubjectKind::Watcher,
        about: "kube-chaos RetryWatcher from Api<ConfigMap>, started after a consistent list",
        zoo: false,
        run: Run::Fn(|c| watcher::retry_watcher(c, false).boxed()),
    },
    Descriptor {
        name: "informer",
        kind: SubjectKind::Informer,
        about: "kube-chaos informer (reflector, store, handlers) on ConfigMaps",
        zoo: false,
        run: Run::Fn(|c| informer::informer(c, false).boxed()),
    },
    Descriptor {
        name: "kube-runtime-watcher",
        kind: SubjectKind::Informer,
        about: "kube-runtime's watcher + reflector with a seeded backoff, events mapped to handler calls",
        zoo: false,
        run: Run::Fn(|c| runtime_watcher::run(c).boxed()),
    },
    Descriptor {
        name: "controller",
        kind: SubjectKind::Controller,
        about: "the mirror controller on kube-chaos's informer, workqueue and worker pool",
        zoo: false,
        run: Run::Fn(|c| controller::ours(c, Feed::Immediate).boxed()),
    },
    Descriptor {
        name: "delayed-controller",
        kind: SubjectKind::Controller,
        about: "the mirror controller whose handler asks for each changed source with add_after (a delay from its data)",
        zoo: false,
        run: Run::Fn(|c| controller::ours(c, Feed::Delayed).boxed()),
    },
    Descriptor {
        name: "kube-runtime-controller",
        kind: SubjectKind::Controller,
        about: "kube-runtime's Controller (seeded backoffs) running the mirror reconcile",
        zoo: false,
        run: Run::Fn(|c| controller::kube_runtime(c).boxed()),
    },
    Descriptor {
        name: "hash-order",
        kind: SubjectKind::Controller,
        about: "lists ConfigMaps into a std HashSet and reconciles them in its order (divergence-finder test)",
        zoo: false,
        run: Run::Fn(|c| hash_order::run(c).boxed()),
    },
    Descriptor {
        name: "wall-clock",
        kind: SubjectKind::Controller,
        about: "reconciles a key named by the wall clock and starts threads (divergence-finder test)",
        zoo: false,
        run: Run::Fn(|c| hash_order::wall_clock(c).boxed()),
    },
    // The bug zoo: each is one of the above with one known bug.
    Descriptor {
        name: "retry-watcher-ignoring-options",
        kind: SubjectKind::Watcher,
        about: "RetryWatcher whose watch function drops the resourceVersion it is given (replays history)",
        zoo: true,
        run: Run::Fn(|c| watcher::retry_watcher(c, true).boxed()),
    },
    Descriptor {
        name: "retry-watcher-reconnect-from-empty",
        kind: SubjectKind::Watcher,
        about: "RetryWatcher that reconnects from \"\" instead of its last resourceVersion",
        zoo: true,
        run: Run::Fn(|c| watcher::retry_watcher(c.with(Bug::ReconnectFromEmpty), false).boxed()),
    },
    Descriptor {
        name: "informer-no-relist-after-410",
        kind: SubjectKind::Informer,
        about: "informer that re-watches the same resourceVersion after a 410 instead of relisting",
        zoo: true,
        run: Run::Fn(|c| informer::informer(c.with(Bug::NoRelistAfterExpired), false).boxed()),
    },
    Descriptor {
        name: "informer-relist-without-tombstones",
        kind: SubjectKind::Informer,
        about: "informer whose relist drops objects that vanished without telling the handlers",
        zoo: true,
        run: Run::Fn(|c| informer::informer(c.with(Bug::RelistWithoutTombstones), false).boxed()),
    },
    Descriptor {
        name: "informer-late-handler",
        kind: SubjectKind::Informer,
        about: "informer whose handler, added after the first list, gets no adds for cached objects",
        zoo: true,
        run: Run::Fn(|c| informer::informer(c.with(Bug::LateHandlerMissesExisting), true).boxed()),
    },
    Descriptor {
        name: "controller-no-processing-set",
        kind: SubjectKind::Controller,
        about: "mirror controller whose workqueue hands a key in flight to a second worker",
        zoo: true,
        run: Run::Fn(|c| controller::ours(c.with(Bug::NoProcessingSet), Feed::Immediate).boxed()),
    },
    Descriptor {
        name: "controller-drops-readd",
        kind: SubjectKind::Controller,
        about: "mirror controller whose workqueue drops a key added while it is being reconciled",
        zoo: true,
        run: Run::Fn(|c| controller::ours(c.with(Bug::DropReaddDuringProcessing), Feed::Immediate).boxed()),
    },
    Descriptor {
        name: "controller-unlimited-requeue",
        kind: SubjectKind::Controller,
        about: "mirror controller that requeues a failed key at once, without the rate limiter",
        zoo: true,
        run: Run::Fn(|c| controller::ours(c.with(Bug::UnlimitedRequeue), Feed::Immediate).boxed()),
    },
    Descriptor {
        name: "controller-no-dead-letter",
        kind: SubjectKind::Controller,
        about: "mirror controller whose retries never reach max_retries and the dead letter",
        zoo: true,
        run: Run::Fn(|c| controller::ours(c.with(Bug::NoDeadLetter), Feed::Immediate).boxed()),
    },
    Descriptor {
        name: "controller-retries-terminal",
        kind: SubjectKind::Controller,
        about: "mirror controller that requeues a terminal reconcile error instead of dead-lettering it",
        zoo: true,
        run: Run::Fn(|c| controller::ours(c.with(Bug::RetryTerminal), Feed::Immediate).boxed()),
    },
    Descriptor {
        name: "retry-watcher-5xx-as-expired",
        kind: SubjectKind::Watcher,
        about: "RetryWatcher that takes a 5xx (at watch start or in-stream) for 410 Expired and stops",
        zoo: true,
        run: Run::Fn(|c| watcher::retry_watcher(c.with(Bug::ServerErrorAsExpired), false).boxed()),
    },
    Descriptor {
        name: "informer-relist-from-cache",
        kind: SubjectKind::Informer,
        about: "informer that relists from \"0\" after a 410: a lagging replica's cache sends it back in time",
        zoo: true,
        run: Run::Fn(|c| informer::informer(c.with(Bug::RelistFromCacheAfterExpired), false).boxed()),
    },
    Descriptor {
        name: "informer-short-watch-timeout",
        kind: SubjectKind::Informer,
        about: "informer whose watch timeout is min_watch_timeout x rand, below [min, 2 x min)",
        zoo: true,
        run: Run::Fn(|c| informer::informer(c.with(Bug::WatchTimeoutWithoutFloor), false).boxed()),
    },
    Descriptor {
        name: "controller-no-forget",
        kind: SubjectKind::Controller,
        about: "mirror controller that does not forget a key's failures when it succeeds (its backoff keeps growing)",
        zoo: true,
        run: Run::Fn(|c| controller::ours(c.with(Bug::NoForgetOnSuccess), Feed::Immediate).boxed()),
    },
    Descriptor {
        name: "delayed-controller-latest-wins",
        kind: SubjectKind::Controller,
        about: "delayed-controller whose workqueue lets a later add_after replace an earlier waiting time",
        zoo: true,
        run: Run::Fn(|c| controller::ours(c.with(Bug::AddAfterLatestWins), Feed::Delayed).boxed()),
    },
];

/// The subjects a scenario may name: the harness's own, then the users' controllers
/// registered in this process.
#[derive(Debug)]
pub struct Registry {
    subjects: &'static [Descriptor],
    users: Mutex<Vec<&'static Descriptor>>,
}

static REGISTRY: Registry = Registry {
    subjects: SUBJECTS,
    users: Mutex::new(Vec::new()),
};

/// A user controller's name that is already taken in this process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a subject called {0:?} already exists in this process; give each controller under test its own name")]
pub struct NameTaken(pub String);

/// Registers a user's controller as subject `name` (kind [`SubjectKind::Operator`]) for the
/// rest of the process, so scenarios, exploration and replays can name it.
pub fn register(name: &str, user: UserSubject) -> Result<&'static Descriptor, NameTaken> {
    let mut users = REGISTRY.users.lock().expect("registry lock");
    if REGISTRY.subjects.iter().any(|d| d.name == name) || users.iter().any(|d| d.name == name) {
        return Err(NameTaken(name.to_string()));
    }
    // Registered once per controller under test and kept for the process: leaked on purpose.
    let d: &'static Descriptor = Box::leak(Box::new(Descriptor {
        name: Box::leak(name.to_string().into_boxed_str()),
        kind: SubjectKind::Operator,
        about: "a user's controller",
        zoo: false,
        run: Run::User(Box::leak(Box::new(user))),
    }));
    users.push(d);
    Ok(d)
}

/// The harness's subjects, in the order `kube-chaos subjects` lists them.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// A subject name the registry does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown subject {name:?}; subjects: {known}")]
pub struct UnknownSubject {
    /// Asked for.
    pub name: String,
    /// The registry's names.
    pub known: String,
}

impl Registry {
    /// Every subject of the harness, in listing order (users' controllers not included).
    pub fn all(&self) -> &'static [Descriptor] {
        self.subjects
    }

    /// The subject called `name`.
    pub fn find(&self, name: &str) -> Option<&'static Descriptor> {
        self.subjects.iter().find(|d| d.name == name).or_else(|| {
            let users = self.users.lock().expect("registry lock");
            users.iter().find(|d| d.name == name).copied()
        })
    }

    /// The subject called `name`, or an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&'static Descriptor, UnknownSubject> {
        self.find(name).ok_or_else(|| UnknownSubject {
            name: name.to_string(),
            known: self.names().join(", "),
        })
    }
}

impl Catalog for Registry {
    fn kind_of(&self, name: &str) -> Option<SubjectKind> {
        self.find(name).map(|d| d.kind)
    }

    fn names(&self) -> Vec<&str> {
        let users = self.users.lock().expect("registry lock");
        let users = users.iter().map(|d| d.name);
        self.subjects.iter().map(|d| d.name).chain(users).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_has_a_unique_name_and_the_zoo_follows_the_real_ones() {
        let names = registry().names();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        let first_zoo = registry().all().iter().position(|d| d.zoo).unwrap();
        assert!(registry().all()[first_zoo..].iter().all(|d| d.zoo));
        assert_eq!(
            registry().get("nope").unwrap_err().to_string(),
            format!("unknown subject \"nope\"; subjects: {}", names.join(", "))
        );
    }
}
