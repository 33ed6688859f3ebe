//! The `slow_handler` fault on the informer side: while it is in force, what the recording
//! handler sees goes through a queue whose consumer takes the fault's delay per event before
//! it records it (a slow handler on its own task, as client-go's `processorListener` runs
//! one). With no slow-down in force and nothing queued, a delivery is recorded at once, so a
//! run without the fault records exactly what it did before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use super::Ctx;
use crate::trace::Record;

/// Records an instance's deliveries, slowly while a `slow_handler` fault is in force.
#[derive(Clone)]
pub(super) struct SlowConsumer {
    ctx: Ctx,
    queued: Arc<AtomicUsize>,
    /// The slow reader's queue, started the first time it is needed.
    tx: Arc<OnceLock<mpsc::UnboundedSender<Record>>>,
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
    fn spawn(&self) -> mpsc::UnboundedSender<Record> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Record>();
        let (c, q) = (self.ctx.clone(), self.queued.clone());
        tokio::spawn(async move {
            while let Some(record) = rx.recv().await {
                let delay = c.controls.handler_delay();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                c.record(record);
                q.fetch_sub(1, Ordering::SeqCst);
            }
        });
        tx
    }

    /// Hands `record` to the handler: recorded now, or queued behind a slow one.
    pub(super) fn deliver(&self, record: Record) {
        let idle = self.queued.load(Ordering::SeqCst) == 0;
        if idle && self.ctx.controls.handler_delay().is_zero() {
            return self.ctx.record(record);
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.get_or_init(|| self.spawn()).send(record).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
