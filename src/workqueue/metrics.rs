//! The workqueue's Prometheus metrics, under client-go's names and help texts, one series per
//! queue (label `name`): `workqueue_depth`, `workqueue_adds_total`,
//! `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`,
//! `workqueue_unfinished_work_seconds`, `workqueue_longest_running_processor_seconds`,
//! `workqueue_retries_total`. The two unfinished-work gauges are computed at scrape time
//! (client-go refreshes them from a 500 ms ticker).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::metrics::{ComputedGauge, OrderedFamily};

/// client-go's buckets for both duration histograms: 10 ns to 10 s, ×10.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-8, 10.0, 10))
}

/// The workqueue metric families of one registry; each queue built with them gets its own
/// `name`-labelled series.
#[derive(Debug, Clone)]
pub struct WorkQueueMetrics {
    depth: OrderedFamily<Gauge>,
    adds: OrderedFamily<Counter>,
    queue_duration: OrderedFamily<Histogram>,
    work_duration: OrderedFamily<Histogram>,
    unfinished: OrderedFamily<ComputedGauge>,
    longest: OrderedFamily<ComputedGauge>,
    retries: OrderedFamily<Counter>,
}

impl WorkQueueMetrics {
    /// Registers the families in `registry` (once per registry).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            depth: OrderedFamily::new(Gauge::default),
            adds: OrderedFamily::new(Counter::default),
            queue_duration: OrderedFamily::new(duration_histogram),
            work_duration: OrderedFamily::new(duration_histogram),
            unfinished: OrderedFamily::new(ComputedGauge::default),
            longest: OrderedFamily::new(ComputedGauge::default),
            retries: OrderedFamily::new(Counter::default),
        };
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            m.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            m.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.",
            m.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            m.work_duration.clone(),
        );
        registry.register(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
            m.unfinished.clone(),
        );
        registry.register(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            m.longest.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            m.retries.clone(),
        );
        m
    }

    /// The series of queue `name`; `unfinished` and `longest` compute the two gauges.
    pub(crate) fn for_queue(
        &self,
        name: &str,
        unfinished: ComputedGauge,
        longest: ComputedGauge,
    ) -> QueueMetrics {
        let l = [("name", name)];
        self.unfinished.insert(&l, unfinished);
        self.longest.insert(&l, longest);
        QueueMetrics {
            depth: self.depth.get_or_create(&l),
            adds: self.adds.get_or_create(&l),
            queue_duration: self.queue_duration.get_or_create(&l),
            work_duration: self.work_duration.get_or_create(&l),
            retries: self.retries.get_or_create(&l),
        }
    }
}

/// One queue's series (shared handles into the families).
#[derive(Debug, Clone)]
pub(crate) struct QueueMetrics {
    pub(crate) depth: Gauge,
    pub(crate) adds: Counter,
    pub(crate) queue_duration: Histogram,
    pub(crate) work_duration: Histogram,
    pub(crate) retries: Counter,
}
