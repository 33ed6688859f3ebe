//! The minWatchTimeout load figure (DESIGN.md §4): with client-go's default 5 min minimum, a
//! watch lives 7.5 min on average, so N idle informers cost N / 450 s watch requests per
//! second (10,000 clients: ~22/s); raising the minimum to 30 min cuts that about 6×.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube_chaos::informer::{Informer, InformerConfig};
use rand::{Rng, SeedableRng};

use super::*;

const HOSTS: u64 = 4;
const PER_HOST: u64 = 250;

/// Watch requests per second at the apiserver over one simulated hour of steady state, for
/// 1,000 idle informers on four hosts. Informers start at random times during a first hour
/// (so that their watch renewals are not synchronised); the second hour is measured.
fn watch_requests_per_second(min_watch_timeout: Duration) -> f64 {
    let hour = secs(3600);
    let mut builder = SimBuilder::new(300)
        .tick(Duration::from_millis(100))
        .duration(hour * 3);
    builder.tcp_capacity = 4096;
    let (mut sim, server) = builder.build().expect("valid");
    for h in 0..HOSTS {
        sim.client(format!("informers-{h}"), async move {
            let client = client(&ClientConfig::new(1));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(h);
            let mut starts: Vec<u64> = (0..PER_HOST)
                .map(|_| rng.random_range(0..3_600_000))
                .collect();
            starts.sort_unstable();
            let t0 = tokio::time::Instant::now();
            let mut informers = Vec::new();
            for (i, at) in starts.into_iter().enumerate() {
                tokio::time::sleep_until(t0 + Duration::from_millis(at)).await;
                let cfg = InformerConfig {
                    min_watch_timeout,
                    seed: Some(h * PER_HOST + i as u64),
                    ..Default::default()
                };
                let informer =
                    Informer::new(Api::<ConfigMap>::default_namespaced(client.clone()), cfg);
                let run = informer.clone();
                tokio::spawn(async move { run.run().await });
                informers.push(informer);
            }
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    step_until(&mut sim, hour).expect("first hour");
    let before = server.stats().watches;
    step_until(&mut sim, hour * 2).expect("second hour");
    let watches = server.stats().watches - before;
    watches as f64 / hour.as_secs_f64()
}

#[test]
fn raising_min_watch_timeout_from_5_to_30_minutes_cuts_idle_watch_load_about_6x() {
    // Counts watch requests at the apiserver; expected N / (1.5 × min) per second.
    let five = watch_requests_per_second(secs(300));
    let thirty = watch_requests_per_second(secs(1800));
    println!("1,000 idle informers: {five:.2} watch requests/s with min_watch_timeout 5 min, {thirty:.3}/s with 30 min ({:.1}x fewer)", five / thirty);
    assert!(
        (2.0..=2.45).contains(&five),
        "expected ~2.22/s (±10%), got {five:.3}"
    );
    let ratio = five / thirty;
    assert!(
        (5.0..=7.5).contains(&ratio),
        "expected ~6x fewer, got {ratio:.2}x ({thirty:.3}/s)"
    );
}
