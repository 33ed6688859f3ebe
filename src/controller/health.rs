//! Readiness (every watched informer's handler has processed its initial list) and liveness
//! (the workers are alive and no watched informer has been failing for longer than the
//! grace period). Each answers `Ok` or the list of problems, in a stable order.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::time::Instant;

use super::Shared;

/// Where a controller is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// `run` not called yet; left when it is.
    NotStarted = 0,
    /// Workers running; left at shutdown.
    Running = 1,
    /// Draining; left when `run` returns.
    ShuttingDown = 2,
    /// `run` returned.
    Stopped = 3,
}

impl Phase {
    pub(crate) fn load(a: &AtomicU8) -> Self {
        match a.load(Ordering::SeqCst) {
            0 => Phase::NotStarted,
            1 => Phase::Running,
            2 => Phase::ShuttingDown,
            _ => Phase::Stopped,
        }
    }
}

/// A watched informer, seen through closures (its object type is erased).
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) synced: Box<dyn Fn() -> bool + Send + Sync>,
    pub(crate) failing_since: Box<dyn Fn() -> Option<Instant> + Send + Sync>,
}

pub(crate) fn readiness(shared: &Shared) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    match Phase::load(&shared.phase) {
        Phase::Running => {}
        Phase::NotStarted => problems.push("workers not started".to_string()),
        Phase::ShuttingDown | Phase::Stopped => problems.push("shutting down".to_string()),
    }
    for s in shared.sources.lock().expect("sources lock").iter() {
        if !(s.synced)() {
            problems.push(format!("informer {} has not synced", s.name));
        }
    }
    verdict(problems)
}

pub(crate) fn liveness(shared: &Shared) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let want = shared.config.concurrency;
    let alive = shared.workers_alive.load(Ordering::SeqCst);
    match Phase::load(&shared.phase) {
        Phase::NotStarted => problems.push("workers not started".to_string()),
        Phase::Stopped => problems.push("stopped".to_string()),
        Phase::Running if alive < want => problems.push(format!("{alive} of {want} workers alive")),
        Phase::Running | Phase::ShuttingDown => {}
    }
    let now = Instant::now();
    let grace = shared.config.watch_failure_grace;
    for s in shared.sources.lock().expect("sources lock").iter() {
        if let Some(since) = (s.failing_since)() {
            let failing = now.saturating_duration_since(since);
            if failing > grace {
                problems.push(format!("informer {} failing for {failing:?}", s.name));
            }
        }
    }
    verdict(problems)
}

fn verdict(problems: Vec<String>) -> Result<(), Vec<String>> {
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems),
    }
}
