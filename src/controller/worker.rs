//! One worker: take a key, reconcile it (a panic counts as a terminal error), settle the
//! outcome with the queue (forget, requeue after, rate-limited retry, dead letter), tell the
//! observer, release the key.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt;
use tokio::time::Instant;

use super::dead_letter::DeadLetter;
use super::error::{ErrorClass, Failure};
use super::observer::Outcome;
use super::{Action, Shared};
use crate::zoo::Bug;

/// Counts a worker as alive for as long as it exists (also when aborted or panicking).
struct Alive<'a>(&'a AtomicUsize);

impl<'a> Alive<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Self(n)
    }
}

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs a worker until the queue is shut down and empty.
pub(crate) async fn run(shared: std::sync::Arc<Shared>) {
    let _alive = Alive::new(&shared.workers_alive);
    while let Some(key) = shared.queue.get().await {
        process(&shared, key).await;
    }
}

async fn process(shared: &Shared, key: String) {
    if let Some(o) = &shared.observer {
        o.reconcile_started(&key);
    }
    let started = Instant::now();
    let limit = shared.config.reconcile_timeout;
    let reconcile = AssertUnwindSafe((shared.reconcile)(key.clone())).catch_unwind();
    let result = match tokio::time::timeout(limit, reconcile).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(panicked(panic.as_ref())),
        Err(_) => Err(Failure {
            class: ErrorClass::Retryable,
            message: format!("reconcile timed out after {limit:?}"),
        }),
    };
    let error_class = result.as_ref().err().map(|f| f.class);
    shared.metrics.reconciled(started.elapsed(), error_class);
    let (outcome, letter) = match result {
        Ok(action) => (succeeded(shared, &key, action), None),
        Err(f) => failed(shared, &key, f),
    };
    if let Some(o) = &shared.observer {
        o.reconcile_finished(&key, &outcome);
        if let Some(l) = &letter {
            o.dead_lettered(&key, l);
        }
    }
    shared.queue.done(&key);
}

fn panicked(panic: &(dyn std::any::Any + Send)) -> Failure {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".into());
    Failure {
        class: ErrorClass::Terminal,
        message: format!("reconcile panicked: {what}"),
    }
}

fn succeeded(shared: &Shared, key: &str, action: Action) -> Outcome {
    let key = key.to_string();
    if !shared.config.zoo.has(Bug::NoForgetOnSuccess) {
        shared.queue.forget(&key);
    }
    shared.dead_letters().remove(&key);
    match action.requeue_delay() {
        Some(d) => {
            shared.queue.add_after(key, d);
            Outcome::RequeueAfter(d)
        }
        None => Outcome::Ok,
    }
}

fn failed(shared: &Shared, key: &str, f: Failure) -> (Outcome, Option<DeadLetter>) {
    let name = &shared.config.name;
    let key_s = key.to_string();
    let attempt = shared.queue.num_requeues(&key_s) + 1;
    let zoo = shared.config.zoo;
    let retry = attempt <= shared.config.max_retries || zoo.has(Bug::NoDeadLetter);
    let retryable = f.class == ErrorClass::Retryable || zoo.has(Bug::RetryTerminal);
    if retryable && retry {
        let retry_in = match zoo.has(Bug::UnlimitedRequeue) {
            true => {
                shared.queue.add_counted_now(key_s);
                std::time::Duration::ZERO
            }
            false => shared.queue.add_rate_limited(key_s),
        };
        tracing::warn!(controller = %name, key, attempt, ?retry_in, error = %f.message, "reconcile failed: retrying");
        let outcome = Outcome::RetryableError {
            error: f.message,
            attempt,
            retry_in,
        };
        return (outcome, None);
    }
    shared.queue.forget(&key_s);
    let letter = DeadLetter {
        key: key_s,
        error: f.message.clone(),
        class: f.class,
        attempts: attempt,
    };
    shared.dead_letters().insert(letter.clone());
    shared.metrics.dead_lettered();
    let outcome = match f.class {
        ErrorClass::Terminal => {
            tracing::error!(controller = %name, key, error = %f.message, "terminal reconcile error: dead-lettered");
            Outcome::TerminalError { error: f.message }
        }
        ErrorClass::Retryable => {
            tracing::error!(controller = %name, key, attempts = attempt, error = %f.message, "reconcile failed after max_retries: dead-lettered");
            Outcome::DeadLettered {
                error: f.message,
                attempts: attempt,
            }
        }
    };
    (outcome, Some(letter))
}
