//! Reconcile metrics (label `controller`): `kube_chaos_reconcile_total`,
//! `kube_chaos_reconcile_duration_seconds`, `kube_chaos_reconcile_errors_total` (by `class`),
//! `kube_chaos_dead_letters_total`.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::error::ErrorClass;
use crate::metrics::OrderedFamily;

/// 1 ms to ~65 s, ×2.
fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// One controller's reconcile series.
#[derive(Debug, Clone)]
pub(crate) struct ControllerMetrics {
    reconciles: Counter,
    duration: Histogram,
    retryable: Counter,
    terminal: Counter,
    dead_letters: Counter,
}

impl ControllerMetrics {
    /// Registers controller `name`'s series in `registry`.
    pub(crate) fn register(registry: &mut Registry, name: &str) -> Self {
        let l = [("controller", name)];
        let reconciles = OrderedFamily::new(Counter::default);
        let duration = OrderedFamily::new(reconcile_histogram);
        let errors = OrderedFamily::new(Counter::default);
        let dead = OrderedFamily::new(Counter::default);
        let m = Self {
            reconciles: reconciles.get_or_create(&l),
            duration: duration.get_or_create(&l),
            retryable: errors.get_or_create(&[("controller", name), ("class", "retryable")]),
            terminal: errors.get_or_create(&[("controller", name), ("class", "terminal")]),
            dead_letters: dead.get_or_create(&l),
        };
        registry.register("kube_chaos_reconcile", "Reconciles finished.", reconciles);
        registry.register(
            "kube_chaos_reconcile_duration_seconds",
            "How long reconciles took, in seconds.",
            duration,
        );
        registry.register(
            "kube_chaos_reconcile_errors",
            "Reconcile errors by class.",
            errors,
        );
        registry.register("kube_chaos_dead_letters", "Keys dead-lettered.", dead);
        m
    }

    /// One reconcile that took `took`, and its error class if it failed.
    pub(crate) fn reconciled(&self, took: Duration, error: Option<ErrorClass>) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
        match error {
            Some(ErrorClass::Retryable) => self.retryable.inc(),
            Some(ErrorClass::Terminal) => self.terminal.inc(),
            None => 0,
        };
    }

    /// One dead letter.
    pub(crate) fn dead_lettered(&self) {
        self.dead_letters.inc();
    }
}
