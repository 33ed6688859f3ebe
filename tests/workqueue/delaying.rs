//! add_after ordering, earliest-wins, and rate-limited requeues at exact times.

use kube_chaos::workqueue::{ExponentialFailure, WorkQueue};

use super::*;

#[tokio::test(start_paused = true)]
async fn delayed_items_come_out_in_due_order_at_their_exact_times() {
    // Added as 30, 10, 20 ms: got as 10, 20, 30 ms, each at exactly its time.
    let q: WorkQueue<&str> = WorkQueue::new("test");
    let t0 = Instant::now();
    q.add_after("c", ms(30));
    q.add_after("a", ms(10));
    q.add_after("b", ms(20));
    assert_eq!((q.len(), q.delayed_len()), (0, 3));
    let mut got = Vec::new();
    for _ in 0..3 {
        let i = q.get().await.unwrap();
        got.push((i, since(t0)));
        q.done(&i);
    }
    assert_eq!(got, [("a", ms(10)), ("b", ms(20)), ("c", ms(30))]);
}

#[tokio::test(start_paused = true)]
async fn add_after_keeps_the_earliest_time_for_an_item() {
    // 50 ms then 10 ms: ready at 10 ms. 10 ms then 50 ms: still 10 ms. Once each.
    let q: WorkQueue<&str> = WorkQueue::new("test");
    let t0 = Instant::now();
    q.add_after("x", ms(50));
    q.add_after("x", ms(10));
    q.add_after("y", ms(10));
    q.add_after("y", ms(50));
    assert_eq!(q.delayed_len(), 2);
    let first = q.get().await.unwrap();
    let second = q.get().await.unwrap();
    assert_eq!((first, second, since(t0)), ("x", "y", ms(10)));
    tokio::time::sleep(ms(100)).await;
    assert!(q.is_empty(), "no second copy at 50 ms");
}

#[tokio::test(start_paused = true)]
async fn an_earlier_delayed_item_wakes_a_worker_parked_on_a_later_one() {
    // A worker sleeps towards the 1 s item; a 10 ms item added meanwhile comes out at 10 ms.
    let q: WorkQueue<&str> = WorkQueue::new("test");
    let t0 = Instant::now();
    q.add_after("late", Duration::from_secs(1));
    let w = tokio::spawn({
        let q = q.clone();
        async move { (q.get().await, since(t0)) }
    });
    settle().await;
    q.add_after("early", ms(10));
    assert_eq!(w.await.unwrap(), (Some("early"), ms(10)));
}

#[tokio::test(start_paused = true)]
async fn a_delayed_add_of_an_in_flight_item_is_deferred_to_done() {
    // Due while in flight: not handed out until done.
    let q: WorkQueue<&str> = WorkQueue::new("test");
    q.add("a");
    q.get().await.unwrap();
    q.add_after("a", ms(5));
    tokio::time::sleep(ms(10)).await;
    assert_eq!(q.len(), 0);
    q.done(&"a");
    assert_eq!(q.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_requeues_wait_5_10_20_ms_and_forget_resets() {
    // The default limiter's exponential part; num_requeues counts; forget restarts at 5 ms.
    let q: WorkQueue<&str> = WorkQueue::new("test");
    let mut waits = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        q.add_rate_limited("a");
        q.get().await.unwrap();
        waits.push(since(t));
        q.done(&"a");
    }
    assert_eq!(waits, [ms(5), ms(10), ms(20)]);
    assert_eq!(q.num_requeues(&"a"), 3);
    q.forget(&"a");
    assert_eq!(q.num_requeues(&"a"), 0);
    let t = Instant::now();
    q.add_rate_limited("a");
    q.get().await.unwrap();
    assert_eq!(since(t), ms(5));
}

#[tokio::test(start_paused = true)]
async fn a_custom_limiter_sets_the_delays() {
    // 1 s doubling to 3 s: waits 1, 2, 3, 3 s.
    let limiter = ExponentialFailure::new(Duration::from_secs(1), Duration::from_secs(3)).unwrap();
    let q: WorkQueue<&str> = WorkQueue::builder("test").rate_limiter(limiter).build();
    let mut waits = Vec::new();
    for _ in 0..4 {
        let t = Instant::now();
        q.add_rate_limited("a");
        q.get().await.unwrap();
        waits.push(since(t).as_secs());
        q.done(&"a");
    }
    assert_eq!(waits, [1, 2, 3, 3]);
}

#[tokio::test(start_paused = true)]
async fn handing_an_item_to_a_worker_cancels_its_pending_add_after() {
    // "x" waits for 50 ms, but an add runs it at once: the 50 ms wait is gone (client-go
    // would run it a second time then). A new add_after from the worker's outcome stands.
    let q: WorkQueue<&str> = WorkQueue::new("test");
    let t0 = Instant::now();
    q.add_after("x", ms(50));
    q.add("x");
    assert_eq!(q.get().await, Some("x"));
    assert_eq!(q.delayed_len(), 0, "the pending wait was cancelled");
    q.add_after("x", ms(20));
    q.done(&"x");
    assert_eq!((q.get().await, since(t0)), (Some("x"), ms(20)));
    q.done(&"x");
    tokio::time::sleep(ms(100)).await;
    assert!(q.is_empty() && q.delayed_len() == 0, "no run at 50 ms");
}

#[tokio::test(start_paused = true)]
async fn delayed_items_due_together_wake_as_many_parked_workers() {
    // Regression (found by `add_after_earliest` on the delayed-controller): two workers park
    // before anything is queued; a and b come due together at 10 ms. The worker that wakes
    // moves both into the queue; the other must be woken for b, not left parked until the
    // first is done.
    assert_eq!(
        two_parked_workers_take(ms(10), ms(10)).await,
        [("a", ms(10)), ("b", ms(10))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_worker_taking_a_delayed_item_hands_the_timer_for_the_next_one_to_another() {
    // Regression (a delayed retry waited for a busy worker while another sat idle): two
    // workers park with nothing queued; a is due at 10 ms, b at 20 ms. Only one worker is
    // woken to watch the earliest time; when it takes a (and keeps it), the other must be
    // the one that takes b at 20 ms.
    assert_eq!(
        two_parked_workers_take(ms(10), ms(20)).await,
        [("a", ms(10)), ("b", ms(20))]
    );
}

/// Two workers park with nothing queued; `a` and `b` are then added after `a_in` and `b_in`.
/// Returns what each worker took and when, sorted.
async fn two_parked_workers_take(a_in: Duration, b_in: Duration) -> Vec<(&'static str, Duration)> {
    let q: WorkQueue<&str> = WorkQueue::new("test");
    let t0 = Instant::now();
    let worker = |q: WorkQueue<&'static str>| {
        tokio::spawn(async move {
            let i = q.get().await.unwrap();
            (i, since(t0))
        })
    };
    let (w1, w2) = (worker(q.clone()), worker(q.clone()));
    settle().await;
    q.add_after("a", a_in);
    q.add_after("b", b_in);
    let mut got = vec![w1.await.unwrap(), w2.await.unwrap()];
    got.sort();
    got
}
