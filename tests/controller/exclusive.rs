//! A key is never reconciled by two workers at once, however often it is re-added.

use std::collections::BTreeSet;

use kube_chaos::controller::Action;
use rand::{Rng, SeedableRng};

use super::*;

#[derive(Default)]
struct Watch {
    in_flight: BTreeSet<String>,
    violations: Vec<String>,
    max_parallel: usize,
    reconciles: u32,
}

#[tokio::test(start_paused = true)]
async fn the_same_key_is_never_reconciled_concurrently_by_many_workers() {
    // 8 workers, 20 keys re-added every ms for 2 s while reconciles take 1-9 ms: an in-flight
    // set records any overlap per key; the pool did run keys in parallel.
    let watch = Arc::new(Mutex::new(Watch::default()));
    let w = watch.clone();
    let c = Controller::builder(config(8, 0))
        .build(Arc::new(()), move |key: String, _| {
            let w = w.clone();
            let took = ms(1 + (key.len() as u64 * 7 + w.lock().unwrap().reconciles as u64) % 9);
            async move {
                {
                    let mut g = w.lock().unwrap();
                    if !g.in_flight.insert(key.clone()) {
                        g.violations.push(key.clone());
                    }
                    g.max_parallel = g.max_parallel.max(g.in_flight.len());
                    g.reconciles += 1;
                }
                tokio::time::sleep(took).await;
                w.lock().unwrap().in_flight.remove(&key);
                Ok::<_, TestError>(Action::await_change())
            }
        })
        .unwrap();
    let run = start(&c);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..2000 {
        for _ in 0..5 {
            c.queue().add(format!("ns/k{}", rng.random_range(0..20)));
        }
        tokio::time::sleep(ms(1)).await;
    }
    c.shutdown();
    let report = run.await.unwrap();
    let g = watch.lock().unwrap();
    assert_eq!(g.violations, Vec::<String>::new());
    assert!(g.max_parallel >= 4, "parallelism {}", g.max_parallel);
    assert!(g.reconciles > 1000, "reconciles {}", g.reconciles);
    assert!(report.drained);
}
