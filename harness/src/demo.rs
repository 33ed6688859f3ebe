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

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;

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

type Timeline = Rc<RefCell<Vec<(Duration, String, String)>>>;

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
pub fn run(seed: u64) -> Result<DemoOutcome, String> {
    let builder = SimBuilder::new(seed)
        .duration(DEMO_LENGTH + Duration::from_secs(60))
        .cluster(|c| c.watch_cache_capacity = 8);
    let (mut sim, server) = builder.build().map_err(|e| e.to_string())?;
    let timeline: Timeline = Rc::default();
    let view: Rc<RefCell<BTreeMap<String, String>>> = Rc::default();
    let counters = Rc::new(RefCell::new((0u32, 0u32)));

    let t = timeline.clone();
    sim.client("writer", async move {
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
    });

    let (t, v, c) = (timeline.clone(), view.clone(), counters.clone());
    sim.client("watcher", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = tokio::time::Instant::now();
        let mut rv: Option<String> = None;
        let mut backoff = Duration::from_secs(1);
        'outer: while start.elapsed() < DEMO_LENGTH {
            let from = match rv.clone() {
                Some(rv) => rv,
                None => match api.list(&ListParams::default()).await {
                    Ok(list) => {
                        c.borrow_mut().1 += 1;
                        let mut view = v.borrow_mut();
                        view.clear();
                        for cm in &list.items {
                            view.insert(cm.name_any(), value(cm));
                        }
                        let at = list.metadata.resource_version.unwrap_or_default();
                        note(
                            &t,
                            "watcher",
                            format!("LIST {} objects at RV {at}", list.items.len()),
                        );
                        at
                    }
                    Err(e) => {
                        note(
                            &t,
                            "watcher",
                            format!("list failed: {}; retry in {backoff:?}", chain(&e)),
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            let params = WatchParams::default()
                .timeout(WATCH_TIMEOUT)
                .disable_bookmarks();
            let mut stream = match api.watch(&params, &from).await {
                Ok(s) => s.boxed(),
                Err(e) => {
                    note(
                        &t,
                        "watcher",
                        format!(
                            "watch from RV {from} failed: {}; retry in {backoff:?}",
                            chain(&e)
                        ),
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            note(
                &t,
                "watcher",
                format!("WATCH from RV {from} (timeoutSeconds={WATCH_TIMEOUT})"),
            );
            rv = Some(from);
            let deadline =
                tokio::time::Instant::now() + Duration::from_secs(WATCH_TIMEOUT.into()) + GRACE;
            loop {
                let Ok(item) = tokio::time::timeout_at(deadline, stream.next()).await else {
                    note(
                        &t,
                        "watcher",
                        "watch silent past its deadline: the stream is dead, rewatch",
                    );
                    continue 'outer;
                };
                match item {
                    None => {
                        note(
                            &t,
                            "watcher",
                            "watch ended by the server; rewatch from the last RV",
                        );
                        continue 'outer;
                    }
                    Some(Err(e)) => {
                        note(&t, "watcher", format!("watch error: {e}; rewatch"));
                        continue 'outer;
                    }
                    Some(Ok(WatchEvent::Error(s))) if s.code == 410 => {
                        c.borrow_mut().0 += 1;
                        note(
                            &t,
                            "watcher",
                            format!("ERROR 410 {}: {} -> relist", s.reason, s.message),
                        );
                        rv = None;
                        continue 'outer;
                    }
                    Some(Ok(WatchEvent::Error(s))) => {
                        note(
                            &t,
                            "watcher",
                            format!("ERROR {} {}; rewatch", s.code, s.message),
                        );
                        continue 'outer;
                    }
                    Some(Ok(WatchEvent::Bookmark(b))) => rv = Some(b.metadata.resource_version),
                    Some(Ok(WatchEvent::Added(cm) | WatchEvent::Modified(cm))) => {
                        let (name, val, at) = (cm.name_any(), value(&cm), cm.resource_version());
                        note(
                            &t,
                            "watcher",
                            format!("{name} = {val} (RV {})", at.clone().unwrap_or_default()),
                        );
                        v.borrow_mut().insert(name, val);
                        rv = at;
                    }
                    Some(Ok(WatchEvent::Deleted(cm))) => {
                        note(&t, "watcher", format!("{} deleted", cm.name_any()));
                        v.borrow_mut().remove(&cm.name_any());
                        rv = cm.resource_version();
                    }
                }
            }
        }
        Ok(())
    });

    let step_until = |sim: &mut turmoil::Sim, at: Duration| -> Result<(), String> {
        while sim.elapsed() < at {
            sim.step().map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    step_until(&mut sim, PARTITION_AT)?;
    sim.partition("watcher", replica_host(0));
    timeline.borrow_mut().push((
        sim.elapsed(),
        "network".into(),
        "PARTITION watcher <-> apiserver-0".into(),
    ));
    step_until(&mut sim, PARTITION_AT + PARTITION_FOR)?;
    sim.repair("watcher", replica_host(0));
    timeline.borrow_mut().push((
        sim.elapsed(),
        "network".into(),
        "REPAIR watcher <-> apiserver-0".into(),
    ));
    sim.run().map_err(|e| e.to_string())?;

    let server_view: BTreeMap<String, String> = server
        .objects("v1", "ConfigMap")
        .iter()
        .map(|o| {
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (
                name,
                o["data"]["v"].as_str().unwrap_or_default().to_string(),
            )
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
    Ok(DemoOutcome {
        lines,
        expired,
        lists,
        converged,
    })
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
