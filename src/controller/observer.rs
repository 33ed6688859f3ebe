//! The observer hook: a harness (or a log, or a test) sees every reconcile's start and end
//! with its outcome, and every dead letter, in the order the controller saw them.

use std::time::Duration;

use super::dead_letter::DeadLetter;

/// How one reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded; nothing more until the key changes.
    Ok,
    /// Succeeded and asked to be reconciled again after this delay.
    RequeueAfter(Duration),
    /// A retryable error; the key comes back after `retry_in` (the rate limiter's delay).
    RetryableError {
        /// The error text.
        error: String,
        /// Attempts so far in this failure streak (1 for the first failure).
        attempt: u32,
        /// The rate limiter's delay.
        retry_in: Duration,
    },
    /// A terminal error (or a panic in reconcile): the key is dead-lettered at once.
    TerminalError {
        /// The error text.
        error: String,
    },
    /// A retryable error after `max_retries` retries: the key is dead-lettered.
    DeadLettered {
        /// The error text.
        error: String,
        /// Attempts in this failure streak (`max_retries + 1`).
        attempts: u32,
    },
}

impl Outcome {
    /// A short label: `ok`, `requeue_after`, `retryable_error`, `terminal_error`,
    /// `dead_lettered`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::RequeueAfter(_) => "requeue_after",
            Outcome::RetryableError { .. } => "retryable_error",
            Outcome::TerminalError { .. } => "terminal_error",
            Outcome::DeadLettered { .. } => "dead_lettered",
        }
    }
}

/// Sees a controller's reconciles. Called on the worker's task, synchronously: keep it cheap.
/// For one key, calls never interleave (a key is reconciled by one worker at a time).
pub trait ControllerObserver: Send + Sync + 'static {
    /// A worker is about to reconcile `key`.
    fn reconcile_started(&self, key: &str) {
        let _ = key;
    }
    /// The reconcile of `key` ended with `outcome` (before the key is released).
    fn reconcile_finished(&self, key: &str, outcome: &Outcome) {
        let _ = (key, outcome);
    }
    /// `key` was dead-lettered (after `reconcile_finished`).
    fn dead_lettered(&self, key: &str, letter: &DeadLetter) {
        let _ = (key, letter);
    }
    /// The drain deadline passed while `key` was being reconciled: it was abandoned and will
    /// never finish.
    fn reconcile_abandoned(&self, key: &str) {
        let _ = key;
    }
}
