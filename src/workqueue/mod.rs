//! Workqueue: client-go's `workqueue` with an async API.
//!
//! - [`WorkQueue`] (`queue.rs`): dedup queue, delaying (`add_after`, earliest time wins),
//!   rate limiting (`add_rate_limited`, `forget`, `num_requeues`), `shut_down` and
//!   `shut_down_with_drain`. An item is never handed to two workers at once; adds while it is
//!   queued collapse; adds while it is in flight are deferred to `done` and collapse to one.
//! - [`rate_limiter`]: per-item exponential, token bucket, max-of, fast-slow, max-wait.
//! - [`WorkQueueMetrics`] (`metrics.rs`): client-go's `workqueue_*` series through
//!   `prometheus-client`, labelled by queue `name`.
//!
//! Differences from client-go, on purpose: there is no background goroutine — a delayed item
//! moves into the queue when a worker (or `len`) looks, which under paused or simulated tokio
//! time is exact; `shut_down_with_drain` waits for queued items as well as in-flight ones;
//! handing an item to a worker cancels its pending `add_after` (the worker's outcome
//! schedules the next one — client-go would run it again when the old timer fires, which
//! made a dead-lettered key run, and be dead-lettered, twice, and a retry skip its backoff;
//! kube-chaos's explorer found both).
//!
//! ```
//! # async fn demo() {
//! use std::time::Duration;
//! use kube_chaos::workqueue::WorkQueue;
//!
//! let queue: WorkQueue<String> = WorkQueue::new("demo");
//! queue.add("default/a".to_string());
//! queue.add("default/a".to_string()); // collapses
//! let key = queue.get().await.expect("not shut down");
//! queue.add_rate_limited(key.clone()); // back in 5 ms (deferred until done)
//! queue.done(&key);
//! assert_eq!(queue.num_requeues(&key), 1);
//! queue.add_after("default/b".to_string(), Duration::from_secs(1));
//! queue.shut_down();
//! # }
//! ```

mod delaying;
mod metrics;
mod queue;
pub mod rate_limiter;

pub use metrics::WorkQueueMetrics;
pub use queue::{WorkQueue, WorkQueueBuilder};
pub use rate_limiter::{
    default_controller_rate_limiter, ExponentialFailure, FastSlow, MaxOf, MaxWait, RateLimiter,
    RateLimiterError, TokenBucket,
};
