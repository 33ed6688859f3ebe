//! What happened in a run, recorded as it happens and rendered as stable text: one
//! fixed-column line per event, simulated time first, no wall clock, no addresses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How an informer-like subject saw a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A watch event as a RetryWatcher delivered it (`ADDED`, `MODIFIED`, `DELETED`).
    Event(&'static str),
    /// `on_add`, `initial` when part of the first list.
    Add {
        /// Part of the initial list.
        initial: bool,
    },
    /// `on_update` from `old_rv`.
    Update {
        /// The replaced version.
        old_rv: u64,
    },
    /// `on_delete`, `tombstone` for a `DeletedFinalStateUnknown`.
    Delete {
        /// Delivered as a tombstone (deleted while the watch was down).
        tombstone: bool,
    },
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Success, nothing scheduled.
    Ok,
    /// Success, requeue after this long.
    Requeue(Duration),
    /// Retryable error (requeued with backoff).
    Retry(String),
    /// A terminal error that was requeued like a retryable one (a controller bug: terminal
    /// errors are dead-lettered at once). Rendered as a retry; `dead_letter_once` flags it.
    RetriedTerminal(String),
    /// Dead-lettered (terminal error, or retries exhausted).
    DeadLetter(String),
}

/// What kind of error a subject reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The RetryWatcher stopped on a 410: its resourceVersion left the window.
    Expired,
    /// The RetryWatcher saw an event not newer than the last one and stopped.
    HistoricalReplay,
    /// Anything else (retried by the subject).
    Other,
}

impl ErrorKind {
    /// The name traces print.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Expired => "Expired",
            ErrorKind::HistoricalReplay => "HistoricalReplay",
            ErrorKind::Other => "Other",
        }
    }
}

/// One recorded happening.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The runner applied (or ended) a fault.
    Fault(String),
    /// A subject instance (re)started; `incarnation` counts restarts.
    Start {
        /// How many times this instance started before.
        incarnation: u32,
    },
    /// A subject listed (its start RV, or a relist).
    Listed {
        /// The list's resourceVersion.
        rv: u64,
        /// Objects returned.
        count: usize,
    },
    /// A subject saw a change of `key` at `rv`.
    Delivered {
        /// What kind of delivery.
        how: Delivery,
        /// `namespace/name`.
        key: String,
        /// The object's resourceVersion.
        rv: u64,
    },
    /// A subject reported an error; `terminal` when it stopped.
    Error {
        /// Error text.
        message: String,
        /// Which kind of error (the checkers judge the first two).
        kind: ErrorKind,
    },
    /// A reconcile of `key` began.
    ReconcileStart {
        /// The key.
        key: String,
    },
    /// A reconcile of `key` ended.
    ReconcileEnd {
        /// The key.
        key: String,
        /// How.
        outcome: Outcome,
    },
    /// A controller's handler asked for `key` to be reconciled after `after` (`add_after`).
    Enqueued {
        /// The key.
        key: String,
        /// The delay asked for.
        after: Duration,
    },
    /// A workload write the store refused (what and why).
    Workload(String),
    /// A task on a user controller's host panicked (message and location).
    Panic(String),
    /// A user controller's main returned; `early` when the shutdown trigger had not fired.
    Exited {
        /// Returned before the shutdown trigger fired.
        early: bool,
    },
    /// A user's quiet-state condition was evaluated and changed: it now holds, or not (why).
    Condition {
        /// Whether it holds.
        holds: bool,
        /// Why not (empty when it holds).
        detail: String,
    },
    /// A store write (rendered from the server's history).
    Write {
        /// `ADDED`, `MODIFIED`, `DELETED`.
        kind: &'static str,
        /// `namespace/name` (prefixed by the kind for non-ConfigMaps).
        key: String,
        /// Its revision.
        rv: u64,
    },
}

/// A record with its time and origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Simulated time since the start.
    pub at: Duration,
    /// Recording order (ties at the same time keep it).
    pub seq: u64,
    /// Subject instance, or `None` for the runner and the server.
    pub instance: Option<usize>,
    /// What happened.
    pub record: Record,
}

/// An object as a subject holds it at the end: resourceVersion and uid.
pub type Held = BTreeMap<String, (u64, String)>;

type Snapshot = Box<dyn Fn() -> Held + Send>;

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    now: Duration,
    seq: u64,
    finals: BTreeMap<usize, Snapshot>,
    counters: BTreeMap<&'static str, u64>,
    quiet: bool,
}

/// Shared, append-only record of a run (lives outside the simulated hosts, so it survives
/// their crashes).
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Inner>>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder; `quiet` leaves `Delivered` records out of the rendered trace (load
    /// scenarios) while the checkers still see them.
    pub fn new(quiet: bool) -> Self {
        let r = Self::default();
        r.lock().quiet = quiet;
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().expect("recorder lock")
    }

    /// Sets the time used for records made outside any simulated host (the runner).
    pub fn set_now(&self, now: Duration) {
        self.lock().now = now;
    }

    /// Records `record` for `instance` at the current simulated time.
    pub fn record(&self, instance: Option<usize>, record: Record) {
        let at = turmoil::sim_elapsed();
        let mut inner = self.lock();
        let at = at.unwrap_or(inner.now);
        if let Record::Delivered { .. } = record {
            *inner.counters.entry("events").or_default() += 1;
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.entries.push(Entry {
            at,
            seq,
            instance,
            record,
        });
    }

    /// Adds `n` to a named counter (`relists`, `reconciles`, ...).
    pub fn count(&self, name: &'static str, n: u64) {
        *self.lock().counters.entry(name).or_default() += n;
    }

    /// Registers how to read `instance`'s view at the end (replaces an earlier one: the
    /// restarted process's view is the one that counts).
    pub fn set_final_view(&self, instance: usize, view: impl Fn() -> Held + Send + 'static) {
        self.lock().finals.insert(instance, Box::new(view));
    }

    /// Every record so far, in time order.
    pub fn entries(&self) -> Vec<Entry> {
        let mut e = self.lock().entries.clone();
        // At equal times a store write comes before what it caused.
        e.sort_by_key(|e| (e.at, !matches!(e.record, Record::Write { .. }), e.seq));
        e
    }

    /// Whether the rendered trace leaves out deliveries.
    pub fn is_quiet(&self) -> bool {
        self.lock().quiet
    }

    /// The counters so far.
    pub fn counters(&self) -> BTreeMap<&'static str, u64> {
        self.lock().counters.clone()
    }

    /// Each instance's view now.
    pub fn final_views(&self) -> BTreeMap<usize, Held> {
        self.lock().finals.iter().map(|(i, f)| (*i, f())).collect()
    }

    /// Merges server writes (recorded apart) into the trace.
    pub fn add_writes(&self, writes: impl IntoIterator<Item = (Duration, Record)>) {
        let mut inner = self.lock();
        for (at, record) in writes {
            inner.seq += 1;
            let seq = inner.seq;
            inner.entries.push(Entry {
                at,
                seq,
                instance: None,
                record,
            });
        }
    }
}

/// `12.345s`, fixed width.
pub fn secs(d: Duration) -> String {
    format!("{:>9.3}s", d.as_secs_f64())
}

/// One trace line: `time  origin  what  details`.
pub fn line(e: &Entry) -> String {
    let origin = match (e.instance, &e.record) {
        (Some(i), _) => format!("s{i}"),
        (None, Record::Write { .. }) => "server".into(),
        (None, _) => "runner".into(),
    };
    let (what, detail) = describe(&e.record);
    let mut s = format!("{} {origin:<7} {what:<15} {detail}", secs(e.at));
    s.truncate(s.trim_end().len());
    s
}

fn describe(r: &Record) -> (&'static str, String) {
    match r {
        Record::Fault(f) => ("fault", f.clone()),
        Record::Start { incarnation } => ("start", format!("incarnation={incarnation}")),
        Record::Listed { rv, count } => ("list", format!("rv={rv} objects={count}")),
        Record::Delivered { how, key, rv } => delivered(how, key, *rv),
        Record::Error { message, kind } => ("error", format!("{}: {message}", kind.as_str())),
        Record::ReconcileStart { key } => ("reconcile", key.clone()),
        Record::ReconcileEnd { key, outcome } => {
            ("reconciled", format!("{key} {}", outcome_text(outcome)))
        }
        Record::Enqueued { key, after } => (
            "add_after",
            format!("{key} after={}", humantime::format_duration(*after)),
        ),
        Record::Write { kind, key, rv } => ("write", format!("{kind:<8} {key} rv={rv}")),
        Record::Panic(message) => ("panic", message.clone()),
        Record::Workload(refused) => ("workload", refused.clone()),
        Record::Exited { early: true } => ("exited", "before the shutdown trigger".into()),
        Record::Exited { early: false } => ("exited", "after the shutdown trigger".into()),
        Record::Condition { holds: true, .. } => ("condition", "holds".into()),
        Record::Condition { detail, .. } => ("condition", format!("fails: {detail}")),
    }
}

fn delivered(how: &Delivery, key: &str, rv: u64) -> (&'static str, String) {
    match how {
        Delivery::Event(kind) => ("event", format!("{kind:<8} {key} rv={rv}")),
        Delivery::Add { initial } => {
            let tag = if *initial { " initial" } else { "" };
            ("on_add", format!("{key} rv={rv}{tag}"))
        }
        Delivery::Update { old_rv } => ("on_update", format!("{key} rv={old_rv}->{rv}")),
        Delivery::Delete { tombstone } => {
            let tag = if *tombstone { " tombstone" } else { "" };
            ("on_delete", format!("{key} rv={rv}{tag}"))
        }
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".into(),
        Outcome::Requeue(d) => format!("requeue_after={}", humantime::format_duration(*d)),
        Outcome::Retry(e) | Outcome::RetriedTerminal(e) => format!("retry: {e}"),
        Outcome::DeadLetter(e) => format!("dead_letter: {e}"),
    }
}

/// The lines around `at`: `n` before it, `n / 2` from it on (a violation's context).
pub fn around(entries: &[Entry], at: Duration, n: usize) -> Vec<String> {
    let i = entries.partition_point(|e| e.at <= at);
    let lo = i.saturating_sub(n);
    let hi = (i + n / 2).min(entries.len());
    entries[lo..hi].iter().map(line).collect()
}

/// The trace text; a quiet run leaves deliveries out (they still reached the checkers).
pub fn render_shown(entries: &[Entry], quiet: bool) -> String {
    if !quiet {
        return render(entries);
    }
    let shown: Vec<Entry> = entries
        .iter()
        .filter(|e| !matches!(e.record, Record::Delivered { .. }))
        .cloned()
        .collect();
    render(&shown)
}

/// Renders entries as text, one line each.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let _ = writeln!(out, "{}", line(e));
    }
    out
}

/// FNV-1a 64 of a text (a stable digest for huge traces).
pub fn digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
