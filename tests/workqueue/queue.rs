//! Dedup, exclusivity, deferral while in flight, and the two shutdowns.

use kube_chaos::workqueue::WorkQueue;

use super::*;

fn queue() -> WorkQueue<&'static str> {
    WorkQueue::new("test")
}

#[tokio::test(start_paused = true)]
async fn duplicate_adds_of_a_queued_item_collapse_to_one() {
    // a, b, a, a: two items come out, in first-add order, then the queue is empty.
    let q = queue();
    for i in ["a", "b", "a", "a"] {
        q.add(i);
    }
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    assert!(q.is_empty());
}

#[tokio::test(start_paused = true)]
async fn adds_while_in_flight_are_deferred_to_done_and_collapse() {
    // Three adds of an in-flight item queue nothing until done, then exactly one copy.
    let q = queue();
    q.add("a");
    let a = q.get().await.unwrap();
    for _ in 0..3 {
        q.add("a");
    }
    assert_eq!(q.len(), 0, "never handed out twice at once");
    assert_eq!(q.in_flight(), ["a"]);
    q.done(&a);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get().await, Some("a"));
    q.done(&"a");
    assert!(q.is_empty() && q.in_flight().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_item_added_after_done_is_processed_again() {
    // done first, then add: the item is new work.
    let q = queue();
    q.add("a");
    q.get().await.unwrap();
    q.done(&"a");
    assert!(q.is_empty());
    q.add("a");
    assert_eq!(q.get().await, Some("a"));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_worker_wakes_for_an_add_and_a_second_worker_waits_for_another_item() {
    // Two parked getters; one add wakes exactly one of them.
    let q = queue();
    let w1 = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    let w2 = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    settle().await;
    q.add("a");
    settle().await;
    assert!(w1.is_finished() != w2.is_finished(), "exactly one got it");
    q.add("b");
    let (a, b) = (w1.await.unwrap(), w2.await.unwrap());
    let mut got = [a.unwrap(), b.unwrap()];
    got.sort();
    assert_eq!(got, ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn shut_down_stops_intake_but_workers_drain_what_is_queued() {
    // After shut_down: queued items still come out, new adds are dropped, then None; a
    // parked getter is woken with None.
    let q = queue();
    q.add("a");
    q.add("b");
    q.add_after("later", ms(10));
    q.shut_down();
    q.add("c");
    q.add_after("d", ms(1));
    assert!(q.is_shutting_down());
    assert_eq!(q.get().await, Some("a"));
    assert_eq!(q.get().await, Some("b"));
    assert_eq!(q.get().await, None, "delayed items are dropped at shutdown");
    let parked = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    settle().await;
    assert_eq!(parked.await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn shut_down_with_drain_waits_for_in_flight_items_and_plain_shut_down_does_not() {
    // With `a` in flight, shut_down returns at once while shut_down_with_drain waits until
    // `done(a)`, 5 s later.
    let q = queue();
    q.add("a");
    q.get().await.unwrap();
    let t0 = Instant::now();
    let drain = tokio::spawn({
        let q = q.clone();
        async move {
            q.shut_down_with_drain().await;
            since(t0)
        }
    });
    settle().await;
    assert!(!drain.is_finished());
    assert!(q.is_shutting_down(), "the drain shut the queue down");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!drain.is_finished());
    q.add("a");
    q.done(&"a");
    assert_eq!(drain.await.unwrap(), Duration::from_secs(5));
    assert_eq!(q.get().await, None, "the add during shutdown was dropped");
}

#[tokio::test(start_paused = true)]
async fn shut_down_with_drain_also_waits_for_queued_items() {
    // `b` is queued at shutdown: the drain ends only once a worker got it and finished it.
    let q = queue();
    q.add("a");
    q.add("b");
    let a = q.get().await.unwrap();
    let drain = tokio::spawn({
        let q = q.clone();
        async move { q.shut_down_with_drain().await }
    });
    settle().await;
    q.done(&a);
    settle().await;
    assert!(!drain.is_finished(), "b is still queued");
    let b = q.get().await.unwrap();
    q.done(&b);
    drain.await.unwrap();
    assert_eq!(q.get().await, None);
}
