//! `kube-chaos study watch-load`: the minWatchTimeout figure at full scale. N idle informers
//! (client-go's semantics: each watch asks for `timeoutSeconds = min × (1 + rand)`) start
//! together — the cold-start herd — and run for a simulated duration against one replica;
//! the apiserver's request hook records every list and watch request with the time it
//! arrived and the timeout it asked for. The report puts the measured steady-state watch
//! rate beside the analytic one, `N / (1.5 × min)`, with the relative error.
//!
//! Many informers share a host (turmoil's cost grows with hosts, DESIGN.md §2) and one
//! `kube::Client` per host; the tick is coarse (100 ms) since nothing here depends on finer
//! timing than the watch timeouts, and bookmarks come every 10 minutes rather than every
//! minute (an idle watch ends at its timeout either way; the bookmarks were most of the cost).

mod page;
mod report;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube_chaos::informer::{Informer, InformerConfig};

use crate::apiserver::{ClusterError, RequestInfo, Verdict};
use crate::net::{client, ClientConfig};
use crate::sim::{since_start, SimBuilder};
use crate::testing::step_until;

pub use page::page;
pub use report::{table, Durations, WatchLoadReport};

/// One setting of the study.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchLoad {
    /// Idle informers.
    pub informers: u32,
    /// Hosts they are spread over.
    pub hosts: u32,
    /// Simulated time.
    pub duration: Duration,
    /// Each informer's `min_watch_timeout`.
    pub min_watch_timeout: Duration,
    /// Seed of the simulation and the informers.
    pub seed: u64,
}

impl WatchLoad {
    /// `informers` informers with `min_watch_timeout`, for one simulated hour on 10 hosts.
    pub fn new(informers: u32, min_watch_timeout: Duration) -> Self {
        Self {
            informers,
            hosts: 10,
            duration: Duration::from_secs(3600),
            min_watch_timeout,
            seed: 1,
        }
    }

    /// The watch rate the analytic model predicts: `N / (1.5 × min)` per second.
    pub fn expected_rate(&self) -> f64 {
        f64::from(self.informers) / (1.5 * self.min_watch_timeout.as_secs_f64())
    }

    /// Whether the run is long enough for the renewals of a herd started together to spread
    /// into the steady state (six minimum timeouts: the wave of the first generations has
    /// flattened by then).
    pub fn is_steady(&self) -> bool {
        self.duration >= self.min_watch_timeout * 6
    }

    /// Where the steady state is measured from: two minimum timeouts in (every informer has
    /// renewed at least once), or half the run if that is later.
    pub fn steady_from(&self) -> Duration {
        (self.min_watch_timeout * 2).min(self.duration / 2)
    }
}

/// Why a study could not run.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// A setting that cannot run.
    #[error("{0}")]
    Invalid(String),
    /// The cluster could not be built.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The simulation failed.
    #[error("simulation failed: {0}")]
    Simulation(String),
}

/// One request the apiserver saw: when (since the start), and a watch's `timeoutSeconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Seen {
    pub(crate) at: Duration,
    /// `Some(timeout)` for a watch, `None` for a list.
    pub(crate) watch_timeout: Option<u64>,
}

/// Runs one setting and reports what the apiserver saw.
pub fn watch_load(opts: &WatchLoad) -> Result<WatchLoadReport, StudyError> {
    if opts.informers == 0 || opts.hosts == 0 || opts.min_watch_timeout < Duration::from_secs(1) {
        return Err(StudyError::Invalid(
            "informers and hosts must be at least 1, min_watch_timeout at least 1s".into(),
        ));
    }
    let started = Instant::now();
    // Idle watches end at their timeout whatever bookmarks they get, and 10,000 watches'
    // bookmarks every minute would be most of the study's cost: one every 10 minutes (plus
    // the one before each deadline) measures the same watch rate.
    let mut builder = SimBuilder::new(opts.seed)
        .tick(Duration::from_millis(100))
        .duration(opts.duration + Duration::from_secs(60))
        .cluster(|c| c.bookmark_interval = Duration::from_secs(600));
    builder.tcp_capacity = builder.tcp_capacity.max(opts.informers as usize * 2);
    let (mut sim, server) = builder.build()?;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    server.add_hook(recording(seen.clone()));
    for h in 0..opts.hosts {
        let (per_host, first) = share(opts.informers, opts.hosts, h);
        let (min, seed) = (opts.min_watch_timeout, opts.seed);
        sim.client(format!("informers-{h}"), async move {
            let client = client(&ClientConfig::new(1));
            let mut informers = Vec::new();
            for i in first..first + per_host {
                let cfg = InformerConfig {
                    min_watch_timeout: min,
                    seed: Some(seed ^ u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
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
    step_until(&mut sim, opts.duration).map_err(|e| StudyError::Simulation(e.to_string()))?;
    drop(sim);
    let seen = seen.lock().expect("seen lock").clone();
    Ok(WatchLoadReport::new(opts.clone(), &seen, started.elapsed()))
}

/// Host `h`'s informers: how many, and the index of its first.
fn share(informers: u32, hosts: u32, h: u32) -> (u32, u32) {
    let base = informers / hosts;
    let extra = informers % hosts;
    let count = base + u32::from(h < extra);
    (count, h * base + h.min(extra))
}

/// The hook that records every ConfigMap list and watch request; it never changes one.
fn recording(seen: Arc<Mutex<Vec<Seen>>>) -> impl Fn(&RequestInfo) -> Verdict {
    move |r: &RequestInfo| {
        if r.method == "GET" && r.path.ends_with("/configmaps") {
            let watch_timeout = match r.is_watch {
                true => Some(timeout_seconds(&r.query).unwrap_or(0)),
                false => None,
            };
            let at = since_start(r.at);
            seen.lock()
                .expect("seen lock")
                .push(Seen { at, watch_timeout });
        }
        Verdict::Pass
    }
}

fn timeout_seconds(query: &str) -> Option<u64> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "timeoutSeconds")
        .and_then(|(_, v)| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_informers_renew_their_watches_at_the_rate_the_model_predicts() {
        // A small run of the study: 400 informers with a 1 min minimum for 12 min. Each
        // asked for a timeout in [1 min, 2 min), every informer listed once, and the steady
        // watch rate is within 5 % of 400 / 90 s.
        let setting = WatchLoad {
            informers: 400,
            hosts: 4,
            duration: Duration::from_secs(12 * 60),
            min_watch_timeout: Duration::from_secs(60),
            seed: 3,
        };
        let r = watch_load(&setting).unwrap();
        assert_eq!(r.lists, 400);
        assert_eq!(
            r.herd, 400,
            "every informer's first watch comes in the first 10 s"
        );
        assert!(
            r.durations.min >= Duration::from_secs(60),
            "{:?}",
            r.durations
        );
        assert!(
            r.durations.max < Duration::from_secs(120),
            "{:?}",
            r.durations
        );
        assert!(
            r.relative_error().abs() < 0.05,
            "{:.3}/s against {:.3}/s",
            r.steady_rate,
            setting.expected_rate()
        );
        assert!(setting.is_steady());
        let html = page(std::slice::from_ref(&r));
        assert_eq!(html.matches("<polyline").count(), 1, "one line per setting");
        assert!(html.contains("min_watch_timeout 1m"));
        let again = watch_load(&setting).unwrap();
        assert_eq!(r.per_minute, again.per_minute, "same seed, same figures");
        assert_eq!(
            html,
            page(&[WatchLoadReport {
                wall: r.wall,
                ..again
            }]),
            "same seed, same page"
        );
    }

    #[test]
    fn a_setting_without_informers_is_refused() {
        let none = WatchLoad::new(0, Duration::from_secs(60));
        assert!(matches!(watch_load(&none), Err(StudyError::Invalid(_))));
    }

    #[test]
    fn informers_are_shared_out_over_the_hosts_without_gaps() {
        let parts: Vec<(u32, u32)> = (0..3).map(|h| share(10, 3, h)).collect();
        assert_eq!(parts, [(4, 0), (3, 4), (3, 7)]);
    }

    #[test]
    fn the_timeout_a_watch_asked_for_is_read_from_its_query() {
        assert_eq!(
            timeout_seconds("watch=true&timeoutSeconds=437&allowWatchBookmarks=true"),
            Some(437)
        );
        assert_eq!(timeout_seconds("watch=true"), None);
    }
}
