//! kube-runtime's `watcher` (with a seeded backoff) against the simulated cluster: it lists,
//! watches, and relists after the in-stream 410 it gets from a restarted replica.

use std::cell::RefCell;
use std::rc::Rc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use kube_chaos::backoff::Backoff;
use kube_chaos_harness::net::replica_host;
use kube_chaos_harness::sim::crash_replica;

use super::*;

/// A compact line per watcher item.
fn line(item: &Result<watcher::Event<ConfigMap>, watcher::Error>) -> String {
    match item {
        Ok(watcher::Event::Init) => "Init".into(),
        Ok(watcher::Event::InitApply(o)) => format!("InitApply {}", o.name_any()),
        Ok(watcher::Event::InitDone) => "InitDone".into(),
        Ok(watcher::Event::Apply(o)) => format!("Apply {}", o.name_any()),
        Ok(watcher::Event::Delete(o)) => format!("Delete {}", o.name_any()),
        Err(watcher::Error::WatchError(s)) => format!("WatchError {}", s.code),
        Err(e) => format!(
            "Err {}",
            e.to_string().split(':').next().unwrap_or_default()
        ),
    }
}

#[test]
fn kube_runtime_watcher_relists_after_a_410_from_a_restarted_replica() {
    // Proves the 410 path end to end with kube-runtime: after the replica restarts, the
    // watcher's resume RV is older than the new cache's window, so it gets WatchError 410 and
    // relists (Init ... InitDone again), this time seeing the object written meanwhile.
    let (mut sim, server) = SimBuilder::new(50).build().expect("valid");
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let out = seen.clone();
    sim.client("client", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        create_many(&api, 2).await?;
        let mut stream = watcher(api, watcher::Config::default())
            .backoff(Backoff::reflector(Some(50)))
            .boxed();
        // Read until the relist completes: the second InitDone.
        let mut done = 0;
        while done < 2 {
            let item = tokio::time::timeout(secs(600), stream.next())
                .await?
                .expect("watcher never ends");
            done += usize::from(matches!(item, Ok(watcher::Event::InitDone)));
            let l = line(&item);
            // Connection failures while the replica is down repeat with the backoff: keep one.
            if out.borrow().last() != Some(&l) {
                out.borrow_mut().push(l);
            }
        }
        Ok(())
    });
    while sim.elapsed() < secs(5) {
        sim.step().expect("steps");
    }
    crash_replica(&mut sim, &server, 0);
    put(&server, "while-down");
    while sim.elapsed() < secs(20) {
        sim.step().expect("steps");
    }
    sim.bounce(replica_host(0));
    sim.run().expect("ran");
    let seen = seen.borrow();
    let first = ["Init", "InitApply c0", "InitApply c1", "InitDone"];
    assert_eq!(seen[..4], first, "{seen:#?}");
    let relist = [
        "Init",
        "InitApply c0",
        "InitApply c1",
        "InitApply while-down",
        "InitDone",
    ];
    assert_eq!(seen[seen.len() - 5..], relist, "{seen:#?}");
    let between = &seen[4..seen.len() - 5];
    assert!(
        between.iter().any(|l| l.starts_with("Err")),
        "the outage surfaces as errors: {between:?}"
    );
    assert_eq!(
        between.last().map(String::as_str),
        Some("WatchError 410"),
        "{between:?}"
    );
}
