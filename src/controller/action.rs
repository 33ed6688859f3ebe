//! What a successful reconcile asks for next.

use std::time::Duration;

/// The result of a successful reconcile: wait for the next change, or also come back later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile the key again after `d` (earlier if it changes meanwhile).
    pub fn requeue_after(d: Duration) -> Self {
        Self {
            requeue_after: Some(d),
        }
    }

    /// Nothing more to do until the key changes.
    pub fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    /// The requested delay, if any.
    pub fn requeue_delay(&self) -> Option<Duration> {
        self.requeue_after
    }
}
