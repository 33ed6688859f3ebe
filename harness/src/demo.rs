//! `kube-chaos demo`: a readable timeline of one client watching ConfigMaps through a silent
//! partition and the 410 that follows it, in a seeded simulation.
//!
//! The client is a small hand-written list-then-watch loop (client-go's semantics, in a few
//! lines): it resumes from the last resourceVersion it saw, treats a watch that outlives its
//! `timeoutSeconds` by a grace period as dead (client-go's request timeout does the same), and
//! relists after a 410. A writer updates ConfigMaps every two seconds; at 10 s the network
//! between the watcher and the apiserver is partitioned for 40 s. The demo ends by comparing
//! the client's view with the server's.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;

use crate::apiserver::{ApiServer, ClusterError};
use crate::net::{client, replica_host, ClientConfig};
use crate::sim::SimBuilder;

/// Watch timeout the client asks for, in seconds.
const WATCH_TIMEOUT: u32 = 20;
/// How long past `timeoutSeconds` the client waits before calling a silent watch dead.
const GRACE: Duration = Duration::from_secs(5);
/// When the partition starts and how long it lasts.
const PARTITION_AT: Duration = Duration::from_secs(10);
const PARTITION_FOR: Duration = Duration::from_secs(40);
/// The client's retry delay doubles from 1 s up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Total simulated time.
const DEMO_LENGTH: Duration = Duration::from_secs(80);

/// What the demo found, besides its timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOutcome {
    /// Timeline lines, `[  12.345s] who  what`.
    pub lines: Vec<String>,
    /// 410 Expired answers the client got.
    pub expired: u32,
    /// Lists the client made (the first one included).
    pub lists: u32,
    /// Whether the client's final view (name -> data) equals the server's.
    pub converged: bool,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The cluster could not be built.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The simulation failed (a host returned an error).
    #[error("simulation failed: {0}")]
    Simulation(String),
}

type Timeline = Rc<RefCell<Vec<(Duration, String, String)>>>;
/// The watcher's view: name -> data.
type View = Rc<RefCell<BTreeMap<String, String>>>;
/// (410s, lists) the watcher saw.
type Counters = Rc<RefCell<(u32, u32)>>;
type Events = BoxStream<'static, kube::Result<WatchEvent<ConfigMap>>>;

fn note(t: &Timeline, who: &str, what: impl Into<String>) {
    t.borrow_mut().push((
        turmoil::sim_elapsed().unwrap_or_default(),
        who.into(),
        what.into(),
    ));
}

fn value(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("v"))
        .cloned()
        .unwrap_or_default()
}

/// An error and its sources, `outer: inner: ...` (hyper hides the cause in the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// Runs the demo for `seed` and returns its outcome.
pub fn run(seed: u64) -> Result<DemoOutcome, DemoError> {
    let builder = SimBuilder::new(seed)
        .duration(DEMO_LENGTH + Duration::from_secs(60))
        .cluster(|c| c.watch_cache_capacity = 8);
    let (mut sim, server) = builder.build()?;
    let timeline: Timeline = Rc::default();
    let view: View = Rc::default();
    let counters: Counters = Rc::default();
    sim.client("writer", writer(timeline.clone()));
    let watcher = Watcher {
        t: timeline.clone(),
        view: view.clone(),
        counters: counters.clone(),
        rv: None,
        backoff: Duration::from_secs(1),
    };
    sim.client("watcher", watcher.run());
    partition_and_repair(&mut sim, &timeline).map_err(|e| DemoError::Simulation(e.to_string()))?;
    Ok(outcome(&server, &timeline, &view, &counters))
}

/// Creates three ConfigMaps, then updates one every two seconds.
async fn writer(t: Timeline) -> turmoil::Result {
    let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
    for i in 0..3 {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("demo-{i}")}, "data": {"v": "0"}
        }))?;
        api.create(&PostParams::default(), &cm).await?;
    }
    note(&t, "writer", "created demo-0, demo-1, demo-2");
    let (start, mut n) = (tokio::time::Instant::now(), 0u32);
    while start.elapsed() < DEMO_LENGTH - Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        n += 1;
        let name = format!("demo-{}", n % 3);
        let patch = Patch::Merge(serde_json::json!({"data": {"v": n.to_string()}}));
        api.patch(&name, &PatchParams::default(), &patch).await?;
        if n % 5 == 0 {
            note(
                &t,
                "writer",
                format!("{n} updates so far (last: {name} = {n})"),
            );
        }
    }
    note(&t, "writer", format!("done after {n} updates"));
    Ok(())
}

/// The list-then-watch client: its resume point, its view and its retry delay.
struct Watcher {
    t: Timeline,
    view: View,
    counters: Counters,
    rv: Option<String>,
    backoff: Duration,
}

impl Watcher {
    async fn run(mut self) -> turmoil::Result {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = tokio::time::Instant::now();
        while start.elapsed() < DEMO_LENGTH {
            let Some(from) = self.resume_point(&api).await else {
                continue;
            };
            let Some(stream) = self.open(&api, from).await else {
                continue;
            };
            self.follow(stream).await;
        }
        Ok(())
    }

    fn note(&self, what: impl Into<String>) {
        note(&self.t, "watcher", what);
    }

    async fn retry_later(&mut self, what: String) {
        self.note(format!("{what}; retry in {:?}", self.backoff));
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// The last RV seen, or a fresh list's (`None` after a failed list).
    async fn resume_point(&mut self, api: &Api<ConfigMap>) -> Option<String> {
        if let Some(rv) = self.rv.clone() {
            return Some(rv);
        }
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                self.counters.borrow_mut().1 += 1;
                let mut view = self.view.borrow_mut();
                view.clear();
                for cm in &list.items {
                    view.insert(cm.name_any(), value(cm));
                }
                let at = list.metadata.resource_version.unwrap_or_default();
                self.note(format!("LIST {} objects at RV {at}", list.items.len()));
                Some(at)
            }
            Err(e) => {
                self.retry_later(format!("list failed: {}", chain(&e)))
                    .await;
                None
            }
        }
    }

    /// A watch from `from` (`None` after a failed request).
    async fn open(&mut self, api: &Api<ConfigMap>, from: String) -> Option<Events> {
        let params = WatchParams::default()
            .timeout(WATCH_TIMEOUT)
            .disable_bookmarks();
        let stream = match api.watch(&params, &from).await {
            Ok(s) => s.boxed(),
            Err(e) => {
                let what = format!("watch from RV {from} failed: {}", chain(&e));
                self.retry_later(what).await;
                return None;
            }
        };
        self.backoff = Duration::from_secs(1);
        self.note(format!(
            "WATCH from RV {from} (timeoutSeconds={WATCH_TIMEOUT})"
        ));
        self.rv = Some(from);
        Some(stream)
    }

    /// Follows one watch until it ends, fails, goes silent past its deadline or says 410.
    async fn follow(&mut self, mut stream: Events) {
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(WATCH_TIMEOUT.into()) + GRACE;
        loop {
            let Ok(item) = tokio::time::timeout_at(deadline, stream.next()).await else {
                self.note("watch silent past its deadline: the stream is dead, rewatch");
                return;
            };
            match item {
                None => return self.note("watch ended by the server; rewatch from the last RV"),
                Some(Err(e)) => return self.note(format!("watch error: {e}; rewatch")),
                Some(Ok(ev)) => {
                    if !self.event(ev) {
                        return;
                    }
                }
            }
        }
    }

    /// Applies one event; false when the watch must be given up.
    fn event(&mut self, ev: WatchEvent<ConfigMap>) -> bool {
        match ev {
            WatchEvent::Error(s) if s.code == 410 => {
                self.counters.borrow_mut().0 += 1;
                self.note(format!("ERROR 410 {}: {} -> relist", s.reason, s.message));
                self.rv = None;
                return false;
            }
            WatchEvent::Error(s) => {
                self.note(format!("ERROR {} {}; rewatch", s.code, s.message));
                return false;
            }
            WatchEvent::Bookmark(b) => self.rv = Some(b.metadata.resource_version),
            WatchEvent::Added(cm) | WatchEvent::Modified(cm) => {
                let (name, val, at) = (cm.name_any(), value(&cm), cm.resource_version());
                self.note(format!(
                    "{name} = {val} (RV {})",
                    at.clone().unwrap_or_default()
                ));
                self.view.borrow_mut().insert(name, val);
                self.rv = at;
            }
            WatchEvent::Deleted(cm) => {
                self.note(format!("{} deleted", cm.name_any()));
                self.view.borrow_mut().remove(&cm.name_any());
                self.rv = cm.resource_version();
            }
        }
        true
    }
}

/// Steps to the partition, cuts the watcher off for [`PARTITION_FOR`], repairs, runs out.
fn partition_and_repair(sim: &mut turmoil::Sim<'_>, timeline: &Timeline) -> turmoil::Result {
    let network = |sim: &turmoil::Sim<'_>, what: &str| {
        timeline
            .borrow_mut()
            .push((sim.elapsed(), "network".into(), what.into()));
    };
    crate::testing::step_until(sim, PARTITION_AT)?;
    sim.partition("watcher", replica_host(0));
    network(sim, "PARTITION watcher <-> apiserver-0");
    crate::testing::step_until(sim, PARTITION_AT + PARTITION_FOR)?;
    sim.repair("watcher", replica_host(0));
    network(sim, "REPAIR watcher <-> apiserver-0");
    sim.run()
}

/// The timeline and whether the watcher's view equals the server's ConfigMaps.
fn outcome(
    server: &ApiServer,
    timeline: &Timeline,
    view: &View,
    counters: &Counters,
) -> DemoOutcome {
    let server_view: BTreeMap<String, String> = server
        .objects("v1", "ConfigMap")
        .iter()
        .map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            let v = o["data"]["v"].as_str().unwrap_or_default();
            (name.to_string(), v.to_string())
        })
        .collect();
    let converged = *view.borrow() == server_view;
    let mut lines: Vec<String> = timeline
        .borrow()
        .iter()
        .map(|(at, who, what)| format!("[{:>8.3}s] {who:<8} {what}", at.as_secs_f64()))
        .collect();
    let (expired, lists) = *counters.borrow();
    lines.push(format!(
        "client view {} server state ({} objects); 410s: {expired}, lists: {lists}",
        if converged { "==" } else { "!=" },
        server_view.len()
    ));
    DemoOutcome {
        lines,
        expired,
        lists,
        converged,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_shows_a_silent_partition_a_410_and_a_relist_and_converges() {
        let out = super::run(1).expect("demo runs");
        assert!(out.converged, "{:#?}", out.lines);
        assert!(out.expired >= 1 && out.lists >= 2, "{out:#?}");
        let text = out.lines.join("\n");
        for needle in [
            "PARTITION",
            "silent past its deadline",
            "ERROR 410 Expired",
            "REPAIR",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert_eq!(
            out,
            super::run(1).expect("demo runs"),
            "the same seed, the same timeline"
        );
    }
}
