//! A deterministic change signal (one sender, many waiters).
//!
//! `tokio::sync::watch` would do, except that it spreads waiters over eight `Notify`s chosen
//! by the runtime's thread-local RNG, which is seeded from the OS: two watch streams woken by
//! the same write then run in an order that differs from run to run, and so does everything
//! they send. Here waiters are woken in the order they registered, so a simulation stays a
//! pure function of its seed (DESIGN.md §8).

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
struct Inner {
    version: u64,
    next_id: u64,
    /// Registered waiters, in registration order.
    waiters: Vec<(u64, Waker)>,
}

/// The sending side: bumping it wakes every waiting [`Subscriber`], oldest first.
#[derive(Debug, Default, Clone)]
pub(crate) struct Signal(Arc<Mutex<Inner>>);

impl Signal {
    /// Records a change and wakes the waiters in registration order.
    pub(crate) fn bump(&self) {
        let waiters = {
            let mut inner = self.0.lock().expect("signal lock");
            inner.version += 1;
            std::mem::take(&mut inner.waiters)
        };
        for (_, w) in waiters {
            w.wake();
        }
    }

    /// A subscriber that has seen every change so far.
    pub(crate) fn subscribe(&self) -> Subscriber {
        let mut inner = self.0.lock().expect("signal lock");
        inner.next_id += 1;
        Subscriber {
            signal: self.clone(),
            id: inner.next_id,
            seen: inner.version,
        }
    }
}

/// The waiting side.
#[derive(Debug)]
pub(crate) struct Subscriber {
    signal: Signal,
    id: u64,
    seen: u64,
}

impl Subscriber {
    /// Makes the next [`changed`](Self::changed) return at once.
    pub(crate) fn mark_changed(&mut self) {
        self.seen = self.seen.wrapping_sub(1);
    }

    /// Waits for a change not yet seen.
    pub(crate) async fn changed(&mut self) {
        poll_fn(|cx| {
            let mut inner = self.signal.0.lock().expect("signal lock");
            if inner.version != self.seen {
                self.seen = inner.version;
                return Poll::Ready(());
            }
            let id = self.id;
            match inner.waiters.iter_mut().find(|(i, _)| *i == id) {
                Some((_, w)) => w.clone_from(cx.waker()),
                None => inner.waiters.push((id, cx.waker().clone())),
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.signal.0.lock() {
            inner.waiters.retain(|(i, _)| *i != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Recorder(usize, Arc<Mutex<Vec<usize>>>, AtomicUsize);
    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.2.fetch_add(1, Ordering::SeqCst);
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn waiters_wake_in_registration_order_and_see_each_change_once() {
        let signal = Signal::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut subs: Vec<_> = (0..5).map(|_| signal.subscribe()).collect();
        let mut futs: Vec<_> = subs.iter_mut().map(|s| Box::pin(s.changed())).collect();
        for (i, f) in futs.iter_mut().enumerate().rev() {
            let waker = Waker::from(Arc::new(Recorder(i, order.clone(), AtomicUsize::new(0))));
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(f.as_mut().poll(&mut cx).is_pending());
        }
        signal.bump();
        assert_eq!(
            *order.lock().unwrap(),
            [4, 3, 2, 1, 0],
            "registration order"
        );
        let waker = Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        for f in &mut futs {
            assert!(f.as_mut().poll(&mut cx).is_ready());
        }
        drop(futs);
        let mut again = Box::pin(subs[0].changed());
        assert!(
            again.as_mut().poll(&mut cx).is_pending(),
            "a seen change does not fire twice"
        );
    }
}
