//! The controller's knobs, validated: bad values are a [`ConfigError`], never a panic.

use std::time::Duration;

/// At most this many workers.
pub const MAX_CONCURRENCY: usize = 1024;
/// At most this many retries of one failure streak (the default limiter reaches its 1000 s
/// cap after 18).
pub const MAX_RETRIES: u32 = 1000;

/// Knobs of a [`Controller`](super::Controller).
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// Names the queue and the metrics series (`name` / `controller` labels) and the logs.
    pub name: String,
    /// Workers reconciling in parallel (distinct keys only).
    pub concurrency: usize,
    /// Retries of a retryable error before the key is dead-lettered (0: dead-letter at the
    /// first error). A key is attempted at most `max_retries + 1` times per failure streak.
    pub max_retries: u32,
    /// A reconcile still running after this is dropped and counts as a retryable error (a
    /// request on a connection that silently died would otherwise hang its key forever).
    pub reconcile_timeout: Duration,
    /// How long shutdown waits for queued and in-flight reconciles before abandoning them.
    pub drain_deadline: Duration,
    /// Liveness fails once a watched informer has been failing for longer than this.
    pub watch_failure_grace: Duration,
    /// Dead letters kept for inspection (the oldest goes first).
    pub dead_letter_capacity: usize,
    /// The bug zoo's switch (always off outside the kube-chaos harness).
    #[doc(hidden)]
    pub zoo: crate::zoo::Zoo,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            name: "controller".into(),
            concurrency: 2,
            max_retries: 5,
            reconcile_timeout: Duration::from_secs(300),
            drain_deadline: Duration::from_secs(30),
            watch_failure_grace: Duration::from_secs(120),
            dead_letter_capacity: 10_000,
            zoo: crate::zoo::Zoo::default(),
        }
    }
}

/// A configuration the controller cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No name to label metrics and logs with.
    #[error("controller name must not be empty")]
    EmptyName,
    /// Nobody would ever reconcile.
    #[error("concurrency must be at least 1 worker")]
    ZeroConcurrency,
    /// More workers than the bound.
    #[error("concurrency {got} exceeds the maximum of {max} workers")]
    TooManyWorkers {
        /// Asked for.
        got: usize,
        /// The bound.
        max: usize,
    },
    /// More retries than the bound.
    #[error("max_retries {got} exceeds the maximum of {max}")]
    TooManyRetries {
        /// Asked for.
        got: u32,
        /// The bound.
        max: u32,
    },
    /// Every reconcile would time out at once.
    #[error("reconcile_timeout must be positive")]
    ZeroReconcileTimeout,
    /// Dead letters could not be inspected.
    #[error("dead_letter_capacity must be at least 1")]
    ZeroDeadLetterCapacity,
}

impl ControllerConfig {
    /// Checks every knob.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if self.concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        if self.concurrency > MAX_CONCURRENCY {
            return Err(ConfigError::TooManyWorkers {
                got: self.concurrency,
                max: MAX_CONCURRENCY,
            });
        }
        if self.max_retries > MAX_RETRIES {
            return Err(ConfigError::TooManyRetries {
                got: self.max_retries,
                max: MAX_RETRIES,
            });
        }
        if self.reconcile_timeout.is_zero() {
            return Err(ConfigError::ZeroReconcileTimeout);
        }
        if self.dead_letter_capacity == 0 {
            return Err(ConfigError::ZeroDeadLetterCapacity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_knob_is_a_named_error() {
        // One bad field at a time on top of the (valid) default.
        let ok = ControllerConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut ControllerConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert_eq!(bad(|c| c.name.clear()), "controller name must not be empty");
        assert_eq!(
            bad(|c| c.concurrency = 0),
            "concurrency must be at least 1 worker"
        );
        assert_eq!(
            bad(|c| c.concurrency = 5000),
            "concurrency 5000 exceeds the maximum of 1024 workers"
        );
        assert_eq!(
            bad(|c| c.max_retries = u32::MAX),
            "max_retries 4294967295 exceeds the maximum of 1000"
        );
        assert_eq!(
            bad(|c| c.reconcile_timeout = Duration::ZERO),
            "reconcile_timeout must be positive"
        );
        assert_eq!(
            bad(|c| c.dead_letter_capacity = 0),
            "dead_letter_capacity must be at least 1"
        );
    }
}
