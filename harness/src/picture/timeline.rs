//! What a run's picture shows, as plain data: lanes of marks over simulated time, fault
//! windows as bands, the server's writes and watch requests, the violations. Drawing is
//! `svg.rs`'s job; this file only decides what goes where.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::run::Report;
use crate::scenario::Scenario;
use crate::trace::{Delivery, Entry, ErrorKind, Outcome, Record};
use crate::watch_log::WatchEnd;

/// One thing drawn on a lane.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// The instance (re)started.
    Start(Duration),
    /// A list (its start RV or a relist).
    List(Duration),
    /// A delivered event or handler call.
    Event(Duration),
    /// A 410 Expired the subject reported.
    Expired(Duration),
    /// Any other error it reported.
    Error(Duration),
    /// A span: a reconcile from start to end, or a watch from request to its timeout.
    Span {
        /// Start.
        from: Duration,
        /// End.
        to: Duration,
        /// How it ended.
        how: SpanEnd,
    },
    /// A server write.
    Write(Duration),
}

/// How a span ended (its colour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanEnd {
    /// A reconcile that succeeded.
    Ok,
    /// A reconcile that failed and was retried.
    Retry,
    /// A reconcile that was dead-lettered.
    DeadLetter,
    /// A reconcile still running at the end.
    Running,
    /// A watch connection as its client saw it, and how it ended.
    Connection(WatchEnd, String),
    /// A watch on this replica; `early` when it ended before its `timeoutSeconds` (the
    /// subject's next watch began: dropped, expired, reset, or given up by the client).
    Watch {
        /// The replica.
        replica: usize,
        /// Ended before its timeout.
        early: bool,
    },
}

/// A row of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// Its label (`s0`, `reconcile default/a`, `server writes`, ...).
    pub label: String,
    /// What is drawn on it.
    pub marks: Vec<Mark>,
}

/// A fault's window, shaded across every lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// The fault's tag.
    pub label: String,
    /// Start.
    pub from: Duration,
    /// End (equal to `from` for an instant fault).
    pub to: Duration,
}

/// A violation: where it is drawn and the trace line it links to.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// When.
    pub at: Duration,
    /// The checker and its message.
    pub text: String,
    /// Index of the trace line it links to.
    pub line: usize,
}

/// Everything the picture shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The run's end (the x axis runs from 0 to here).
    pub end: Duration,
    /// The lanes, top to bottom.
    pub lanes: Vec<Lane>,
    /// Fault windows.
    pub bands: Vec<Band>,
    /// Violations.
    pub flags: Vec<Flag>,
}

/// Watch spans beyond this many are left out of the picture (load scenarios).
pub const MAX_WATCH_SPANS: usize = 2_000;

/// Instances beyond this many get no lane of their own (load scenarios).
pub const MAX_INSTANCE_LANES: usize = 40;

impl Timeline {
    /// The timeline of `report`, a run of `scenario`.
    pub fn new(scenario: &Scenario, report: &Report) -> Self {
        let mut lanes = instance_lanes(report);
        lanes.extend(reconcile_lanes(&report.entries, report.simulated));
        lanes.push(watch_lane(report));
        lanes.push(Lane {
            label: "server writes".into(),
            marks: report
                .entries
                .iter()
                .filter(|e| matches!(e.record, Record::Write { .. }))
                .map(|e| Mark::Write(e.at))
                .collect(),
        });
        let bands = scenario
            .faults
            .iter()
            .map(|f| {
                let (at, end) = f.window();
                Band {
                    label: f.tag().into(),
                    from: at.0,
                    to: end.map_or(at.0, |e| e.0),
                }
            })
            .collect();
        Self {
            end: report.simulated,
            lanes,
            bands,
            flags: flags(report),
        }
    }
}

/// One lane per subject instance (the first [`MAX_INSTANCE_LANES`]): its watch
/// connections, starts, lists, deliveries, errors.
fn instance_lanes(report: &Report) -> Vec<Lane> {
    let mut lanes: BTreeMap<usize, Vec<Mark>> = BTreeMap::new();
    let shown = |i: usize| i < MAX_INSTANCE_LANES;
    for w in report.client_watches.iter().filter(|w| shown(w.instance)) {
        lanes.entry(w.instance).or_default().push(Mark::Span {
            from: w.from,
            to: w.to.unwrap_or(report.simulated),
            how: SpanEnd::Connection(w.end, w.resource_version.clone()),
        });
    }
    for l in report.client_lists.iter().filter(|l| shown(l.instance)) {
        lanes.entry(l.instance).or_default().push(Mark::List(l.at));
    }
    for e in &report.entries {
        let Some(i) = e.instance.filter(|i| *i < MAX_INSTANCE_LANES) else {
            continue;
        };
        let mark = match &e.record {
            Record::Start { .. } => Mark::Start(e.at),
            // Lists are drawn from the client's own requests (above).
            Record::Listed { .. } => continue,
            Record::Delivered {
                how: Delivery::Delete { tombstone: true },
                ..
            } => Mark::Error(e.at),
            Record::Delivered { .. } => Mark::Event(e.at),
            Record::Error {
                kind: ErrorKind::Expired,
                ..
            } => Mark::Expired(e.at),
            Record::Error { .. } => Mark::Error(e.at),
            _ => continue,
        };
        lanes.entry(i).or_default().push(mark);
    }
    lanes
        .into_iter()
        .map(|(i, marks)| Lane {
            label: format!("s{i}"),
            marks,
        })
        .collect()
}

/// One lane per reconciled key: each reconcile as a span coloured by its outcome.
fn reconcile_lanes(entries: &[Entry], end: Duration) -> Vec<Lane> {
    let mut open: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut lanes: BTreeMap<&str, Vec<Mark>> = BTreeMap::new();
    for e in entries {
        match &e.record {
            Record::ReconcileStart { key } => {
                open.insert(key, e.at);
                lanes.entry(key).or_default();
            }
            Record::ReconcileEnd { key, outcome } => {
                let from = open.remove(key.as_str()).unwrap_or(e.at);
                let how = match outcome {
                    Outcome::Ok | Outcome::Requeue(_) => SpanEnd::Ok,
                    Outcome::Retry(_) | Outcome::RetriedTerminal(_) => SpanEnd::Retry,
                    Outcome::DeadLetter(_) => SpanEnd::DeadLetter,
                };
                let to = e.at;
                lanes
                    .entry(key)
                    .or_default()
                    .push(Mark::Span { from, to, how });
            }
            _ => {}
        }
    }
    for (key, from) in open {
        let how = SpanEnd::Running;
        lanes
            .entry(key)
            .or_default()
            .push(Mark::Span { from, to: end, how });
    }
    lanes
        .into_iter()
        .map(|(key, marks)| Lane {
            label: format!("reconcile {key}"),
            marks,
        })
        .collect()
}

/// The watch requests the apiserver saw, each from its arrival to its `timeoutSeconds`; with
/// a single subject instance a watch ends where the next one begins, if that is sooner.
fn watch_lane(report: &Report) -> Lane {
    let single = report
        .entries
        .iter()
        .filter_map(|e| e.instance)
        .all(|i| i == 0);
    let requests = &report.watch_requests;
    let marks = requests
        .iter()
        .enumerate()
        .take(MAX_WATCH_SPANS)
        .map(|(i, w)| {
            let timeout = (w.at + Duration::from_secs(w.timeout_seconds)).min(report.simulated);
            let next = requests.get(i + 1).filter(|_| single).map(|n| n.at);
            let to = next.map_or(timeout, |n| n.min(timeout));
            let how = SpanEnd::Watch {
                replica: w.replica,
                early: to < timeout,
            };
            Mark::Span {
                from: w.at,
                to,
                how,
            }
        })
        .collect();
    Lane {
        label: "apiserver watches".into(),
        marks,
    }
}

/// Every violation shown in the report, linked to the first trace line at or after it.
fn flags(report: &Report) -> Vec<Flag> {
    let times: Vec<Option<f64>> = report
        .trace
        .lines()
        .map(|l| {
            l.split_whitespace()
                .next()
                .and_then(|t| t.trim_end_matches('s').parse().ok())
        })
        .collect();
    let mut out = Vec::new();
    for v in &report.verdicts {
        for found in &v.violations {
            let at = found.at.as_secs_f64();
            let line = times
                .iter()
                .position(|t| t.is_some_and(|t| t >= at - 0.0005))
                .unwrap_or(times.len().saturating_sub(1));
            out.push(Flag {
                at: found.at,
                text: format!("{}: {} ({})", v.checker, found.message, found.key),
                line,
            });
        }
    }
    out
}
