//! An idempotent stop signal shared by a component and its handles.
//!
//! A [`RetryWatcher`](crate::retry_watcher::RetryWatcher) and an
//! [`Informer`](crate::informer::Informer) hand out their `StopHandle`; any clone stops the
//! component, once, however many times it is called.
//!
//! ```
//! use kube_chaos::stop::StopHandle;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let stop = StopHandle::default();
//! let worker = tokio::spawn({
//!     let stop = stop.clone();
//!     async move {
//!         stop.stopped().await; // a component selects on this next to its work
//!         "stopped"
//!     }
//! });
//! stop.stop();
//! stop.stop(); // idempotent
//! assert_eq!(worker.await.unwrap(), "stopped");
//! assert!(stop.is_stopped());
//! # }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Stops a running component. Cloning gives another handle on the same signal; stopping
/// twice is harmless.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    stopped: AtomicBool,
    notify: Notify,
}

impl StopHandle {
    /// Asks the component to stop. Idempotent.
    pub fn stop(&self) {
        if !self.0.stopped.swap(true, Ordering::SeqCst) {
            self.0.notify.notify_waiters();
        }
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Resolves once `stop` has been called (at once if it already was).
    pub async fn stopped(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_wakes_waiters_and_is_idempotent() {
        // A waiter registered before stop() resolves; later waiters resolve at once.
        let h = StopHandle::default();
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.stopped().await }
        });
        tokio::task::yield_now().await;
        h.stop();
        h.stop();
        waiter.await.expect("waiter finished");
        h.stopped().await;
        assert!(h.is_stopped());
    }
}
