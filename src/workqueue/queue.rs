//! The work queue: plain data behind one lock ([`State`], synchronous and unit-tested) and a
//! thin async shell ([`WorkQueue`]) that parks workers on a `Notify` until an item is ready,
//! the earliest delayed item is due, or the queue shuts down. No background task: due delayed
//! items are moved into the queue by whoever looks next (`get`, `len`).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::delaying::Delayed;
use super::metrics::{QueueMetrics, WorkQueueMetrics};
use super::rate_limiter::{default_controller_rate_limiter, RateLimiter};
use crate::metrics::ComputedGauge;
use crate::zoo::{Bug, Zoo};

/// What `get` finds.
enum Take<T> {
    /// An item, now in flight; `more` when other items are ready or waiting: the taker may
    /// have been the worker woken for them, or the one whose timer watched the earliest
    /// delayed item, so another parked worker must look (and set its own timer).
    Item(T, bool),
    /// Shut down and nothing left queued.
    Closed,
    /// Nothing ready; the earliest delayed item is due then (if any).
    Wait(Option<Instant>),
}

struct State<T> {
    /// Ready items in FIFO order; each is also in `dirty`.
    queue: VecDeque<T>,
    /// Items that need processing (queued, or re-added while in flight), with when added.
    dirty: BTreeMap<T, Instant>,
    /// Items handed to a worker and not yet `done`, with when handed out.
    processing: BTreeMap<T, Instant>,
    delayed: Delayed<T>,
    limiter: Box<dyn RateLimiter<T>>,
    shutting_down: bool,
    metrics: Option<QueueMetrics>,
    zoo: Zoo,
    /// When the queue was built: the timestamp of untimed items (no metrics to feed).
    epoch: Instant,
}

impl<T: Ord + Clone> State<T> {
    /// Now if metrics need timestamps, else a placeholder (reading the clock is the largest
    /// cost of a handoff).
    fn stamp(&self) -> Instant {
        match self.metrics {
            Some(_) => Instant::now(),
            None => self.epoch,
        }
    }

    /// Marks `item` dirty; true if it became ready (a worker should wake).
    fn add(&mut self, item: T, now: Instant) -> bool {
        if self.shutting_down || self.dirty.contains_key(&item) {
            return false;
        }
        let in_flight = self.processing.contains_key(&item);
        if in_flight && self.zoo.has(Bug::DropReaddDuringProcessing) {
            return false;
        }
        if let Some(m) = &self.metrics {
            m.adds.inc();
            m.depth.inc();
        }
        self.dirty.insert(item.clone(), now);
        if in_flight && !self.zoo.has(Bug::NoProcessingSet) {
            return false;
        }
        self.queue.push_back(item);
        true
    }

    /// Schedules `item` at `at`; true if it is now the earliest delayed item.
    fn add_at(&mut self, item: T, at: Instant) -> bool {
        if self.shutting_down {
            return false;
        }
        let before = self.delayed.next_due();
        match self.zoo.has(Bug::AddAfterLatestWins) {
            true => self.delayed.replace(item, at),
            false => self.delayed.insert(item, at),
        }
        self.delayed.next_due() != before
    }

    /// Moves the delayed items due at `now` into the queue.
    fn promote_due(&mut self, now: Instant) {
        while let Some(item) = self.delayed.pop_due(now) {
            self.add(item, now);
        }
    }

    fn take(&mut self) -> Take<T> {
        if !self.shutting_down && !self.delayed.is_empty() {
            self.promote_due(Instant::now());
        }
        let now = self.stamp();
        let Some(item) = self.queue.pop_front() else {
            return match self.shutting_down {
                true => Take::Closed,
                false => Take::Wait(self.delayed.next_due()),
            };
        };
        let added = self.dirty.remove(&item).unwrap_or(now);
        if let Some(m) = &self.metrics {
            m.depth.dec();
            m.queue_duration.observe(secs(now - added));
        }
        // The worker's outcome decides the item's next delayed add; one still waiting from
        // before (an earlier retry or requeue) would run it again early.
        if !self.delayed.is_empty() {
            self.delayed.remove(&item);
        }
        self.processing.insert(item.clone(), now);
        let more = !self.queue.is_empty() || !self.delayed.is_empty();
        Take::Item(item, more)
    }

    /// Finishes `item`; returns (re-queued, idle).
    fn done(&mut self, item: &T) -> (bool, bool) {
        let now = self.stamp();
        let Some(started) = self.processing.remove(item) else {
            return (false, self.is_idle());
        };
        if let Some(m) = &self.metrics {
            m.work_duration.observe(secs(now - started));
        }
        let requeued = self.dirty.contains_key(item);
        if requeued {
            self.queue.push_back(item.clone());
        }
        (requeued, self.is_idle())
    }

    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.processing.is_empty()
    }

    /// (sum, max) of in-flight seconds.
    fn unfinished(&self, now: Instant) -> (f64, f64) {
        self.processing
            .values()
            .map(|s| secs(now.saturating_duration_since(*s)))
            .fold((0.0, 0.0), |(sum, max), s| (sum + s, f64::max(max, s)))
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

struct Inner<T> {
    name: String,
    state: Mutex<State<T>>,
    /// An item may be ready, or the queue shut down.
    ready: Notify,
    /// Nothing queued or in flight, or the queue shut down.
    idle: Notify,
}

/// A work queue with client-go's guarantees: an item is handed to one worker at a time; adds
/// of a queued item collapse; adds while it is in flight are deferred to `done` and collapse
/// to one; `add_after` keeps the earliest time; `add_rate_limited` delays by the rate
/// limiter. Cheap to clone (clones share the queue).
pub struct WorkQueue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Debug for WorkQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.inner.name)
            .finish()
    }
}

/// Builds a [`WorkQueue`]: name, rate limiter, metrics.
pub struct WorkQueueBuilder<T> {
    name: String,
    limiter: Option<Box<dyn RateLimiter<T>>>,
    metrics: Option<WorkQueueMetrics>,
    zoo: Zoo,
}

impl<T: Ord + Clone + Send + 'static> WorkQueueBuilder<T> {
    /// Uses `limiter` for `add_rate_limited` (default: [`default_controller_rate_limiter`]).
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<T>) -> Self {
        self.limiter = Some(Box::new(limiter));
        self
    }

    /// Records the queue's metrics (label `name`) in `metrics`' registry.
    pub fn metrics(mut self, metrics: &WorkQueueMetrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The bug zoo's switch (always off outside the kube-chaos harness).
    #[doc(hidden)]
    pub fn zoo(mut self, zoo: Zoo) -> Self {
        self.zoo = zoo;
        self
    }

    /// The queue.
    pub fn build(self) -> WorkQueue<T> {
        let limiter = self
            .limiter
            .unwrap_or_else(|| Box::new(default_controller_rate_limiter()));
        let inner = Arc::new_cyclic(|weak: &Weak<Inner<T>>| {
            let metrics = self.metrics.map(|m| {
                let (w1, w2) = (weak.clone(), weak.clone());
                m.for_queue(
                    &self.name,
                    ComputedGauge::new(move || unfinished(&w1).0),
                    ComputedGauge::new(move || unfinished(&w2).1),
                )
            });
            Inner {
                name: self.name,
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: BTreeMap::new(),
                    processing: BTreeMap::new(),
                    delayed: Delayed::default(),
                    limiter,
                    shutting_down: false,
                    metrics,
                    zoo: self.zoo,
                    epoch: Instant::now(),
                }),
                ready: Notify::new(),
                idle: Notify::new(),
            }
        });
        WorkQueue { inner }
    }
}

/// (sum, max) of the in-flight seconds of a queue that may be gone.
fn unfinished<T: Ord + Clone>(queue: &Weak<Inner<T>>) -> (f64, f64) {
    match queue.upgrade() {
        Some(q) => q
            .state
            .lock()
            .expect("workqueue lock")
            .unfinished(Instant::now()),
        None => (0.0, 0.0),
    }
}

impl<T: Ord + Clone + Send + 'static> WorkQueue<T> {
    /// A queue named `name` with client-go's default controller rate limiter, no metrics.
    pub fn new(name: impl Into<String>) -> Self {
        Self::builder(name).build()
    }

    /// A builder for a queue named `name`.
    pub fn builder(name: impl Into<String>) -> WorkQueueBuilder<T> {
        WorkQueueBuilder {
            name: name.into(),
            limiter: None,
            metrics: None,
            zoo: Zoo::default(),
        }
    }

    /// The queue's name (its metrics label).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.inner.state.lock().expect("workqueue lock")
    }

    /// Queues `item` unless it is already queued (collapse) or in flight (deferred to
    /// `done`). Ignored after shutdown.
    pub fn add(&self, item: T) {
        let mut st = self.lock();
        let now = st.stamp();
        let wake = st.add(item, now);
        drop(st);
        if wake {
            self.inner.ready.notify_one();
        }
    }

    /// Queues `item` after `delay`; if it already waits, the earlier time wins; handing it to
    /// a worker before then cancels the wait. Counts in
    /// `workqueue_retries_total` (as client-go's `AddAfter` does). Ignored after shutdown.
    pub fn add_after(&self, item: T, delay: Duration) {
        let now = Instant::now();
        let mut st = self.lock();
        if st.shutting_down {
            return;
        }
        if let Some(m) = &st.metrics {
            m.retries.inc();
        }
        let wake = if delay.is_zero() {
            st.add(item, now)
        } else {
            // A delay past the end of representable time never comes due.
            now.checked_add(delay).is_some_and(|at| st.add_at(item, at))
        };
        drop(st);
        if wake {
            self.inner.ready.notify_one();
        }
    }

    /// Queues `item` after the rate limiter's delay for it; returns that delay.
    pub fn add_rate_limited(&self, item: T) -> Duration {
        let delay = self.lock().limiter.when(&item, Instant::now());
        self.add_after(item, delay);
        delay
    }

    /// Counts a rate-limited requeue of `item` but queues it at once (the bug zoo's
    /// `UnlimitedRequeue`).
    pub(crate) fn add_counted_now(&self, item: T) {
        let _ = self.lock().limiter.when(&item, Instant::now());
        self.add(item);
    }

    /// Clears the rate limiter's memory of `item` (call it when the item succeeded).
    pub fn forget(&self, item: &T) {
        self.lock().limiter.forget(item);
    }

    /// How many times `item` was rate limited since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.lock().limiter.num_requeues(item)
    }

    /// The next item, now in flight until [`done`](Self::done); waits for one. `None` once
    /// the queue is shut down and nothing is left queued.
    pub async fn get(&self) -> Option<T> {
        // Fast path: an item is ready, no need to register as a waiter.
        match self.lock().take() {
            Take::Item(item, more) => return Some(self.handed_out(item, more)),
            Take::Closed => return None,
            Take::Wait(_) => {}
        }
        loop {
            let notified = self.inner.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = match self.lock().take() {
                Take::Item(item, more) => return Some(self.handed_out(item, more)),
                Take::Closed => return None,
                Take::Wait(at) => at,
            };
            tokio::select! {
                biased;
                _ = notified => {}
                _ = sleep_until(wake_at) => {}
            }
        }
    }

    /// `item`, after waking another worker when more is ready or waiting (each `add` wakes
    /// one worker, but promoting due delayed items wakes none, and only a parked worker
    /// that looked since the earliest delayed time was set has a timer for it).
    fn handed_out(&self, item: T, more: bool) -> T {
        if more {
            self.inner.ready.notify_one();
        }
        item
    }

    /// Marks `item` finished; if it was added meanwhile, it is queued again now.
    pub fn done(&self, item: &T) {
        let (requeued, idle) = self.lock().done(item);
        if requeued {
            self.inner.ready.notify_one();
        }
        if idle {
            self.inner.idle.notify_waiters();
        }
    }

    /// Ready items (due delayed items count; items waiting for a later time do not).
    pub fn len(&self) -> usize {
        let mut st = self.lock();
        if !st.shutting_down {
            st.promote_due(Instant::now());
        }
        st.queue.len()
    }

    /// Whether no item is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items waiting for a later time.
    pub fn delayed_len(&self) -> usize {
        self.lock().delayed.len()
    }

    /// The items handed out and not yet done, in order.
    pub fn in_flight(&self) -> Vec<T> {
        self.lock().processing.keys().cloned().collect()
    }

    /// Stops intake (adds and delayed items are dropped from now on); workers still get
    /// what is queued, then `None`.
    pub fn shut_down(&self) {
        {
            let mut st = self.lock();
            st.shutting_down = true;
            st.delayed.clear();
        }
        self.inner.ready.notify_waiters();
        self.inner.idle.notify_waiters();
    }

    /// [`shut_down`](Self::shut_down), then waits until nothing is queued or in flight
    /// (workers must keep calling `get` and `done`; bound the wait with a timeout).
    pub async fn shut_down_with_drain(&self) {
        self.shut_down();
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().is_idle() {
                return;
            }
            notified.await;
        }
    }

    /// Whether [`shut_down`](Self::shut_down) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State<&'static str> {
        State {
            queue: VecDeque::new(),
            dirty: BTreeMap::new(),
            processing: BTreeMap::new(),
            delayed: Delayed::default(),
            limiter: Box::new(default_controller_rate_limiter()),
            shutting_down: false,
            metrics: None,
            zoo: Zoo::default(),
            epoch: Instant::now(),
        }
    }

    fn item(t: Take<&'static str>) -> Option<&'static str> {
        match t {
            Take::Item(i, _) => Some(i),
            _ => None,
        }
    }

    #[test]
    fn the_synchronous_core_collapses_defers_and_requeues_on_done() {
        // Step the state by hand: a duplicate add is a no-op, an add in flight waits for done.
        let now = Instant::now();
        let mut st = state();
        assert!(st.add("a", now));
        assert!(!st.add("a", now), "collapsed");
        assert_eq!(item(st.take()), Some("a"));
        assert!(!st.add("a", now), "deferred while in flight");
        assert!(matches!(st.take(), Take::Wait(None)));
        assert_eq!(st.done(&"a"), (true, false));
        assert_eq!(item(st.take()), Some("a"));
        assert_eq!(st.done(&"a"), (false, true));
        st.shutting_down = true;
        assert!(!st.add("b", now));
        assert!(matches!(st.take(), Take::Closed));
    }
}
