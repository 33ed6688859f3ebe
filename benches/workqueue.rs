//! Benchmarks of the workqueue and the controller (a bench binary, not a test).
//!
//! Run: `cargo bench -p kube-chaos-harness --bench workqueue` (release profile).
//! Figures go to BENCHMARKS.md with the command that produced them.
//!
//! (a) add/get/done handoffs of 200,000 distinct `u64` items from one producer task to 1 and
//!     8 worker tasks on a current-thread tokio runtime (the simulation's kind), as a ratio to
//!     a bare tokio mpsc channel doing the same handoffs (send / recv; the 8 receivers share
//!     the channel's receiver behind a tokio Mutex). Best of 5 runs each.
//! (b) The mirror controller end to end in the simulation: N labelled sources created at once
//!     through the API, reconciled by 4 workers until every mirror exists; reconciles per
//!     wall-clock second and simulated seconds to converge.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube_chaos::controller::{Controller, ControllerConfig, ControllerObserver, Outcome};
use kube_chaos::informer::{Informer, InformerConfig};
use kube_chaos::workqueue::WorkQueue;
use kube_chaos_harness::mirror::{mirror_controller, mirror_converged, MIRROR_LABEL};
use kube_chaos_harness::net::{client, ClientConfig};
use kube_chaos_harness::sim::SimBuilder;
use tokio::sync::{mpsc, Mutex};

const ITEMS: u64 = 200_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Wall time for ITEMS handoffs through the workqueue to `workers` workers.
fn queue_handoffs(workers: usize) -> Duration {
    runtime().block_on(async move {
        let q: WorkQueue<u64> = WorkQueue::new("bench");
        let done = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (q, done) = (q.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(i) = q.get().await {
                    q.done(&i);
                    if done.fetch_add(1, Ordering::Relaxed) + 1 == ITEMS {
                        q.shut_down();
                    }
                }
            }));
        }
        for i in 0..ITEMS {
            q.add(i);
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for t in tasks {
            t.await.expect("worker");
        }
        t0.elapsed()
    })
}

/// Wall time for ITEMS handoffs through a tokio mpsc channel to `workers` receivers.
fn mpsc_handoffs(workers: usize) -> Duration {
    runtime().block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel::<u64>();
        let rx = Arc::new(Mutex::new(rx));
        let done = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (rx, done) = (rx.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let item = rx.lock().await.recv().await;
                    if item.is_none() {
                        return;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for i in 0..ITEMS {
            tx.send(i).expect("open");
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        drop(tx);
        for t in tasks {
            t.await.expect("worker");
        }
        assert_eq!(done.load(Ordering::Relaxed), ITEMS);
        t0.elapsed()
    })
}

fn best_of(n: usize, f: impl Fn() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().expect("n > 0")
}

#[derive(Default)]
struct Count(AtomicU64);

impl ControllerObserver for Count {
    fn reconcile_finished(&self, _key: &str, _outcome: &Outcome) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// (wall time, simulated time to converge, reconciles) for `n` sources.
fn mirror_end_to_end(n: usize) -> (Duration, Duration, u64) {
    let (mut sim, server) = SimBuilder::new(1)
        .duration(Duration::from_secs(3600))
        .build()
        .expect("valid");
    let count = Arc::new(Count::default());
    let converged_at = Rc::new(std::cell::Cell::new(Duration::ZERO));
    let (c2, at, srv) = (count.clone(), converged_at.clone(), server.clone());
    let t0 = Instant::now();
    sim.client("controller", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        let informer = Informer::new(
            api.clone(),
            InformerConfig {
                seed: Some(1),
                ..Default::default()
            },
        );
        let config = ControllerConfig {
            name: "mirror".into(),
            concurrency: 4,
            ..Default::default()
        };
        let builder = Controller::builder(config).observer(c2);
        let controller = mirror_controller(builder, api.clone(), &informer)?;
        let i = informer.clone();
        tokio::spawn(async move { i.run().await });
        let c = controller.clone();
        let run = tokio::spawn(async move { c.run().await });
        let start = tokio::time::Instant::now();
        for k in 0..n {
            let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {
                "name": format!("s{k}"), "labels": {MIRROR_LABEL: "true"}}, "data": {"k": "v"}}))?;
            api.create(&PostParams::default(), &cm).await?;
        }
        while mirror_converged(&srv.objects("v1", "ConfigMap")).is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        at.set(start.elapsed());
        controller.shutdown();
        run.await??;
        informer.stop();
        Ok(())
    });
    sim.run().expect("converged");
    assert_eq!(server.objects("v1", "ConfigMap").len(), 2 * n);
    (
        t0.elapsed(),
        converged_at.get(),
        count.0.load(Ordering::Relaxed),
    )
}

fn main() {
    if cfg!(debug_assertions) {
        eprintln!(
            "note: a debug build; figures for BENCHMARKS.md come from `cargo bench` (release)"
        );
    }
    for workers in [1, 8] {
        let q = best_of(5, || queue_handoffs(workers));
        let m = best_of(5, || mpsc_handoffs(workers));
        let rate = |d: Duration| ITEMS as f64 / d.as_secs_f64();
        println!(
            "(a) {ITEMS} handoffs, {workers} worker(s): workqueue {:.0}/s, mpsc {:.0}/s, ratio {:.2}",
            rate(q),
            rate(m),
            m.as_secs_f64() / q.as_secs_f64()
        );
    }
    for n in [100, 500] {
        let (wall, sim, reconciles) = mirror_end_to_end(n);
        println!(
            "(b) mirror, {n} sources: {reconciles} reconciles in {:.2} s wall ({:.0} reconciles/s), converged after {:.1} simulated s",
            wall.as_secs_f64(),
            reconciles as f64 / wall.as_secs_f64(),
            sim.as_secs_f64()
        );
    }
}
