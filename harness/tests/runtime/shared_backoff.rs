//! A finding about kube-runtime 5, not about the harness: `Controller` puts **one**
//! `StreamBackoff` over the merged stream of all its trigger watchers
//! (`kube-runtime-5.0.0/src/controller/mod.rs`, `run`:
//! `StreamBackoff::new(self.trigger_selector, self.trigger_backoff)`), with
//! `DefaultBackoff` (`watcher.rs`: 800 ms doubling to 30 s, jittered, reset only by an `Ok`
//! item or 120 s without errors). While it backs off, no trigger watcher is polled at all.
//!
//! So when one outage fails every watcher of a controller at once, their errors come out
//! one per backoff period, each doubling the next one, and a watcher that has already seen
//! its 410 (and would relist, succeed and reset the backoff) is not polled while the
//! others' errors are still queued: `SelectAll` returns the first ready item, and the
//! watchers whose responses arrived first are first in its queue. Here a controller with
//! three watchers (itself and two `owns`) sees its apiserver replica restart: failed
//! reconnects while it is down, then three `410 Expired` from the rebuilt watch cache (the
//! resume resourceVersions predate it, as on a real apiserver restart: the cacher's
//! "too old resource version: N (M)"). For seed 1 the ConfigMap watcher gets its 410 at
//! 8.5 s and relists at 25.4 s, the client silent in between; the change written at the
//! crash is reconciled at 25.4 s, against 8.2 s with a constant 1 s trigger backoff (the
//! control: the delay is the backoff's, not the simulated apiserver's).
//!
//! How long depends on how the errors line up. In `examples/app-operator`'s replay file
//! `app-operator-correct-eventually_stable.json` (three watchers too) all three
//! reconnects fail before the restart and all three 410s arrive together at 12.2 s, after
//! three backoffs; the next three (10.9, 22.2, 29.5 s) let one 410 out each, so nothing
//! relists until 74.9 s — after the exploration's 60 s settle (`tests/explore.rs` in that
//! crate pins it). The kube-rs review that introduced the shared backoff discussed this
//! trade-off (kube-rs/kube#763: "This applies a unified backoff timer to all triggers").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::utils::Backoff;
use kube::runtime::{watcher, Controller};
use kube::ResourceExt;

use super::*;

/// When the replica crashes (right after a write) and when it is back.
const CRASH: Duration = Duration::from_secs(4);
const RESTART: Duration = Duration::from_secs(5);

/// The simulated times at which ConfigMap `c` was reconciled with each value.
type Seen = Arc<Mutex<Vec<(f64, String)>>>;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

/// A constant trigger backoff (the control).
struct Constant(Duration);

impl Iterator for Constant {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(self.0)
    }
}

impl Backoff for Constant {
    fn reset(&mut self) {}
}

/// Runs a kube-runtime `Controller` on ConfigMaps that owns Secrets and ServiceAccounts;
/// ConfigMap `c` goes from v1 to v2 at [`CRASH`], the instant replica 0 crashes, and the
/// replica is back at [`RESTART`]. Returns what the reconciles saw and the access log.
fn restart_run(seed: u64, constant_backoff: bool) -> (Vec<(f64, String)>, Vec<String>) {
    let builder = SimBuilder::new(seed)
        .duration(secs(130))
        .cluster(|c| c.access_log = true);
    let (mut sim, server) = builder.build().expect("a valid cluster");
    put_configmap(&server, "c", "v1");
    let seen = Seen::default();
    let s = seen.clone();
    sim.client("controller", async move {
        let client = client(&ClientConfig::new(1));
        let mut c = Controller::new(Api::<ConfigMap>::all(client.clone()), Default::default())
            .owns(
                Api::<Secret>::all(client.clone()),
                watcher::Config::default(),
            )
            .owns(
                Api::<ServiceAccount>::all(client),
                watcher::Config::default(),
            );
        if constant_backoff {
            c = c.trigger_backoff(Constant(Duration::from_secs(1)));
        }
        let reconcile = |cm: Arc<ConfigMap>, seen: Arc<Seen>| async move {
            let value = cm.data.as_ref().and_then(|d| d.get("k")).cloned();
            let at = turmoil::elapsed().as_secs_f64();
            if cm.name_any() == "c" {
                seen.lock().unwrap().push((at, value.unwrap_or_default()));
            }
            Ok::<_, Error>(Action::await_change())
        };
        let policy = |_: Arc<ConfigMap>, _: &Error, _: Arc<Seen>| Action::await_change();
        c.run(reconcile, policy, Arc::new(s))
            .for_each(|_| futures::future::ready(()))
            .await;
        Ok(())
    });
    step_until(&mut sim, CRASH).expect("steps");
    put_configmap(&server, "c", "v2");
    kube_chaos_harness::sim::crash_replica(&mut sim, &server, 0);
    step_until(&mut sim, RESTART).expect("steps");
    sim.bounce(replica_host(0));
    step_until(&mut sim, secs(120)).expect("steps");
    let seen = seen.lock().unwrap().clone();
    (seen, server.access_log())
}

/// Simulated seconds of an access-log line.
fn at(line: &str) -> f64 {
    let t: f64 = line.split(' ').next().unwrap().parse().unwrap();
    t - kube_chaos_harness::sim::EPOCH_SECS as f64
}

/// When v2 was first reconciled.
fn v2_at(seen: &[(f64, String)]) -> Option<f64> {
    seen.iter().find(|(_, v)| v == "v2").map(|(t, _)| *t)
}

/// The access-log lines after the restart that mention `what`.
fn after_restart<'a>(log: &'a [String], what: &'a str) -> impl Iterator<Item = &'a String> {
    log.iter()
        .filter(move |l| at(l) > RESTART.as_secs_f64() && l.contains(what))
}

#[test]
fn kube_runtime_controller_waits_out_its_shared_backoff_after_an_apiserver_restart() {
    let (seen, log) = kube_chaos_harness::seeded(1, || restart_run(1, false));
    // The restarted replica's watch cache starts at the current revision: the three
    // resumed watches all get 410.
    assert_eq!(after_restart(&log, "too old resource version").count(), 3);
    // The ConfigMap watcher's 410 (its resumed watch) and its relist: 17 s apart for seed 1,
    // with the apiserver healthy all along...
    let resumed = after_restart(&log, "GET /api/v1/configmaps?&watch=true")
        .map(|l| at(l))
        .next()
        .expect("a resumed watch");
    let relist = after_restart(&log, "GET /api/v1/configmaps?&limit=")
        .map(|l| at(l))
        .next()
        .expect("a relist");
    assert!(
        relist - resumed > 15.0,
        "410 at {resumed} s, relist at {relist} s"
    );
    // ... and the client silent for most of it: every watcher waits on the one backoff.
    let mut times: Vec<f64> = log.iter().map(|l| at(l)).collect();
    times.retain(|t| (resumed..=relist).contains(t));
    let quiet = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(quiet > 15.0, "longest quiet gap {quiet} s in {times:?}");
    // The change written at the crash is reconciled only after the relist.
    let v2 = v2_at(&seen).expect("v2 reconciled in the end");
    assert!(v2 >= relist, "v2 at {v2} s, relist at {relist} s");
}

#[test]
fn with_a_constant_trigger_backoff_the_same_restart_heals_in_seconds() {
    let (seen, _) = kube_chaos_harness::seeded(1, || restart_run(1, true));
    let v2 = v2_at(&seen).expect("v2 reconciled");
    assert!(v2 < 10.0, "v2 reconciled at {v2} s: {seen:?}");
}
