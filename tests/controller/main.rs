//! The controller's guarantees under paused tokio time, fed by hand through its queue (the
//! informer wiring is exercised in the harness's simulation tests).

mod exclusive;
#[cfg(feature = "axum")]
mod http;
mod lifecycle;
mod retries;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube_chaos::controller::{
    Classify, Controller, ControllerConfig, ControllerObserver, DeadLetter, ErrorClass, Outcome,
    ShutdownReport,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A reconcile error of either class.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// Retryable.
    #[error("flaky dependency")]
    Flaky,
    /// Terminal.
    #[error("invalid spec")]
    Invalid,
}

impl Classify for TestError {
    fn class(&self) -> ErrorClass {
        match self {
            TestError::Flaky => ErrorClass::Retryable,
            TestError::Invalid => ErrorClass::Terminal,
        }
    }
}

/// Records observer calls as `"<ms since t0> <key> <event>"` lines.
pub struct Recorder {
    t0: Instant,
    lines: Mutex<Vec<String>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            t0: Instant::now(),
            lines: Mutex::default(),
        })
    }

    fn push(&self, key: &str, what: String) {
        let ms = (Instant::now() - self.t0).as_millis();
        self.lines
            .lock()
            .unwrap()
            .push(format!("{ms} {key} {what}"));
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl ControllerObserver for Recorder {
    fn reconcile_started(&self, key: &str) {
        self.push(key, "started".into());
    }
    fn reconcile_finished(&self, key: &str, outcome: &Outcome) {
        let what = match outcome {
            Outcome::RetryableError {
                attempt, retry_in, ..
            } => format!("retryable attempt={attempt} retry_in={retry_in:?}"),
            Outcome::DeadLettered { attempts, .. } => format!("dead_lettered attempts={attempts}"),
            Outcome::RequeueAfter(d) => format!("requeue_after {d:?}"),
            other => other.label().to_string(),
        };
        self.push(key, what);
    }
    fn dead_lettered(&self, key: &str, letter: &DeadLetter) {
        self.push(key, format!("letter {} {}", letter.class, letter.attempts));
    }
    fn reconcile_abandoned(&self, key: &str) {
        self.push(key, "abandoned".into());
    }
}

/// A config named `test` with `concurrency` workers and `max_retries`.
pub fn config(concurrency: usize, max_retries: u32) -> ControllerConfig {
    ControllerConfig {
        name: "test".into(),
        concurrency,
        max_retries,
        ..Default::default()
    }
}

/// Starts `c.run()` on its own task.
pub fn start(c: &Controller) -> JoinHandle<ShutdownReport> {
    let c = c.clone();
    tokio::spawn(async move { c.run().await.expect("first run") })
}

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Lets spawned tasks run without moving the paused clock.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
