//! Invariant checkers over a run's recorded history (DESIGN.md §6). Each reads the
//! [`Evidence`] — the server's true history, what each subject instance delivered, its final
//! view — and returns the violations it found.
//!
//! - `stream`: `watch_exact` and `no_historical_replay`.
//! - `cache`: `no_event_loss`.
//! - `control`: `queue_exclusive`, `reconcile_coverage`, `dead_letter_once`, `retry_backoff`,
//!   `convergence`.

mod cache;
mod control;
mod stream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::apiserver::{LabelSelector, StoreEvent};
use crate::runner::around;
use crate::scenario::Scenario;
use crate::subject::Kind;
use crate::trace::{secs, Entry, Held, Record};

/// What the checkers read.
pub struct Evidence<'a> {
    /// The scenario run.
    pub scenario: &'a Scenario,
    /// The subject's kind.
    pub kind: Kind,
    /// The merged trace (subjects, runner, server writes), in time order.
    pub entries: &'a [Entry],
    /// Every ConfigMap write, oldest first.
    pub history: &'a [Arc<StoreEvent>],
    /// Each instance's final view (store contents).
    pub finals: &'a BTreeMap<usize, Held>,
    /// The live ConfigMaps at the end.
    pub objects: &'a [Arc<Value>],
    /// Measured watch requests per second, if asked for.
    pub watch_rate: Option<f64>,
}

impl Evidence<'_> {
    /// Simulated time since the start for a server timestamp.
    fn since_start(&self, at: Duration) -> Duration {
        crate::sim::since_start(at)
    }

    /// Whether the subject's selector selects `obj`.
    fn selects(&self, obj: &Value) -> bool {
        self.scenario
            .subject
            .config
            .label_selector
            .as_deref()
            .is_none_or(|s| {
                LabelSelector::parse(s)
                    .expect("validated selector")
                    .matches_object(obj)
            })
    }

    /// The visible server state at the end: key -> (rv, uid).
    fn server_state(&self) -> Held {
        self.objects
            .iter()
            .filter(|o| self.selects(o))
            .map(|o| {
                let m = &o["metadata"];
                let key = format!(
                    "{}/{}",
                    m["namespace"].as_str().unwrap_or(""),
                    m["name"].as_str().unwrap_or("")
                );
                let rv = m["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                (key, (rv, m["uid"].as_str().unwrap_or("").to_string()))
            })
            .collect()
    }

    /// Each instance's entries, split per incarnation.
    fn incarnations(&self) -> BTreeMap<usize, Vec<Vec<&Entry>>> {
        let mut out: BTreeMap<usize, Vec<Vec<&Entry>>> = BTreeMap::new();
        for e in self.entries {
            let Some(i) = e.instance else { continue };
            let segments = out.entry(i).or_default();
            if matches!(e.record, Record::Start { .. }) || segments.is_empty() {
                segments.push(Vec::new());
            }
            segments.last_mut().expect("a segment").push(e);
        }
        out
    }

    /// Fault windows (start, end) in simulated time, instant faults as zero-length.
    fn fault_windows(&self) -> Vec<(Duration, Duration)> {
        self.scenario
            .faults
            .iter()
            .map(|f| {
                let (at, end) = f.window();
                (at.0, end.map_or(at.0, |e| e.0))
            })
            .collect()
    }

    /// Longest a version may live unobserved outside fault windows.
    fn staleness_bound(&self) -> Duration {
        self.scenario
            .expect
            .staleness_bound
            .map_or(Duration::from_secs(60), |d| d.0)
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The key (or instance) it concerns.
    pub key: String,
    /// Simulated time.
    pub at: Duration,
    /// What broke.
    pub message: String,
    /// Trace lines around `at`.
    pub context: Vec<String>,
}

/// A checker's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Checker name.
    pub checker: &'static str,
    /// What it found (empty: pass).
    pub violations: Vec<Violation>,
}

/// Reports at most this many violations per checker (the rest are counted).
const SHOWN_VIOLATIONS: usize = 5;

impl Verdict {
    /// `checker: pass` or the violations with their context.
    pub fn render(&self) -> String {
        if self.violations.is_empty() {
            return format!("  {:<22} pass\n", self.checker);
        }
        let mut out = format!(
            "  {:<22} VIOLATED ({})\n",
            self.checker,
            self.violations.len()
        );
        for v in self.violations.iter().take(SHOWN_VIOLATIONS) {
            out += &format!(
                "    at {} key {}: {}\n",
                secs(v.at).trim_start(),
                v.key,
                v.message
            );
            for l in &v.context {
                out += &format!("      | {l}\n");
            }
        }
        if self.violations.len() > SHOWN_VIOLATIONS {
            out += &format!(
                "    ... and {} more\n",
                self.violations.len() - SHOWN_VIOLATIONS
            );
        }
        out
    }
}

/// Builds violations with trace context.
struct Found<'e> {
    entries: &'e [Entry],
    out: Vec<Violation>,
}

impl<'e> Found<'e> {
    fn new(ev: &Evidence<'e>) -> Self {
        Self {
            entries: ev.entries,
            out: Vec::new(),
        }
    }

    fn add(&mut self, key: impl Into<String>, at: Duration, message: impl Into<String>) {
        let context = if self.out.len() < SHOWN_VIOLATIONS {
            around(self.entries, at, 4)
        } else {
            Vec::new()
        };
        self.out.push(Violation {
            key: key.into(),
            at,
            message: message.into(),
            context,
        });
    }
}

/// A checker: the violations it finds in the evidence.
type Checker = fn(&Evidence<'_>) -> Vec<Violation>;

/// Runs every checker that applies to the subject's kind (and `watch_rate` when asked for).
pub fn run_all(ev: &Evidence<'_>) -> Vec<Verdict> {
    let mut checks: Vec<(&'static str, Checker)> = match ev.kind {
        Kind::Watcher => vec![
            ("watch_exact", stream::watch_exact),
            ("no_historical_replay", stream::no_historical_replay),
        ],
        Kind::Informer => vec![
            ("no_historical_replay", stream::no_historical_replay),
            ("no_event_loss", cache::no_event_loss),
        ],
        Kind::Controller => vec![
            ("queue_exclusive", control::queue_exclusive),
            ("reconcile_coverage", control::reconcile_coverage),
            ("dead_letter_once", control::dead_letter_once),
            ("retry_backoff", control::retry_backoff),
            ("convergence", control::convergence),
        ],
    };
    if ev.scenario.expect.watch_rate.is_some() {
        checks.push(("watch_rate", watch_rate));
    }
    checks
        .into_iter()
        .map(|(checker, f)| Verdict {
            checker,
            violations: f(ev),
        })
        .collect()
}

fn watch_rate(ev: &Evidence<'_>) -> Vec<Violation> {
    let bounds = ev.scenario.expect.watch_rate.as_ref().expect("asked for");
    let mut found = Found::new(ev);
    match ev.watch_rate {
        Some(r) if r >= bounds.min && r <= bounds.max => {}
        Some(r) => found.add(
            "apiserver",
            ev.scenario.duration.0,
            format!(
                "{r:.3} watch requests/s, expected {} to {}",
                bounds.min, bounds.max
            ),
        ),
        None => found.add(
            "apiserver",
            ev.scenario.duration.0,
            "no watch rate measured",
        ),
    }
    found.out
}
