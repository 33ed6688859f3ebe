//! The `slow_handler` fault on the informer side: while it is in force, what a handler does
//! for an event (the recording handler records it; a controller's feed enqueues its keys)
//! goes through a queue whose consumer takes the fault's delay per event before it does it
//! (a slow handler on its own task, as client-go's `processorListener` runs one). With no
//! slow-down in force and nothing queued, the work is done at once, so a run without the
//! fault does exactly what it did before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use super::Ctx;
use crate::trace::Record;

/// What a handler does for one event.
type Job = Box<dyn FnOnce() + Send>;

/// Does one handler's work per event, slowly while a `slow_handler` fault is in force.
#[derive(Clone)]
pub(super) struct SlowConsumer {
    ctx: Ctx,
    queued: Arc<AtomicUsize>,
    /// The slow reader's queue, started the first time it is needed.
    tx: Arc<OnceLock<mpsc::UnboundedSender<Job>>>,
}

impl SlowConsumer {
    pub(super) fn new(ctx: &Ctx) -> Self {
        Self {
            ctx: ctx.clone(),
            queued: Arc::default(),
            tx: Arc::default(),
        }
    }

    /// Starts the reader's task (on the instance's host).
    fn spawn(&self) -> mpsc::UnboundedSender<Job> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (c, q) = (self.ctx.clone(), self.queued.clone());
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let delay = c.controls.handler_delay();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                job();
                q.fetch_sub(1, Ordering::SeqCst);
            }
        });
        tx
    }

    /// Whether work can be done at once: no slow-down in force, nothing queued.
    fn at_once(&self) -> bool {
        self.queued.load(Ordering::SeqCst) == 0 && self.ctx.controls.handler_delay().is_zero()
    }

    fn queue(&self, job: Job) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.get_or_init(|| self.spawn()).send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Does `job` for one event: now, or queued behind a slow one.
    pub(super) fn run(&self, job: impl FnOnce() + Send + 'static) {
        match self.at_once() {
            true => job(),
            false => self.queue(Box::new(job)),
        }
    }

    /// Hands `record` to the recording handler: recorded now, or queued behind a slow one.
    pub(super) fn deliver(&self, record: Record) {
        if self.at_once() {
            return self.ctx.record(record);
        }
        let ctx = self.ctx.clone();
        self.queue(Box::new(move || ctx.record(record)));
    }
}
