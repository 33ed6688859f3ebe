//! The informer's reflector against client-go's, judged on the request sequence the
//! server's access log records: a list the replica cannot serve falls back to `""` at once
//! and stays there until a list succeeds; a watch that carried only a bookmark is not a
//! "very short watch".

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube_chaos::informer::{Informer, InformerConfig, InitialList};
use kube_chaos_harness::testing::{requests, RequestLog};

use super::*;

fn lists(log: Vec<RequestLog>) -> Vec<RequestLog> {
    log.into_iter()
        .filter(|r| r.method == "GET" && !r.watch && r.path.ends_with("/configmaps"))
        .collect()
}

#[test]
fn a_list_answered_504_too_large_falls_back_to_a_consistent_list_at_once_and_stays_there() {
    // The replica's cache is paused behind the store, so the first list ("not older than"
    // the store's revision) waits and gets 504 ResourceVersionTooLarge. The informer lists
    // from "" at once; that list fails with an injected 500, and the next one is still from
    // "" — not the old RV again (client-go keeps "" until a list succeeds).
    let target = Arc::new(AtomicU64::new(0));
    let t = target.clone();
    let builder = SimBuilder::new(208).cluster(|c| c.access_log = true);
    let server = run(builder, move |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        api.create(&PostParams::default(), &configmap("a", "v"))
            .await?;
        server.pause_cache(0);
        api.create(&PostParams::default(), &configmap("b", "v"))
            .await?;
        t.store(server.revision(), Ordering::SeqCst);
        let failures = AtomicU32::new(0);
        server.add_hook(move |r: &RequestInfo| {
            let consistent_list = r.method == "GET"
                && !r.is_watch
                && r.path.ends_with("/configmaps")
                && !r.query.contains("resourceVersion=");
            match consistent_list && failures.fetch_add(1, Ordering::SeqCst) == 0 {
                true => Verdict::Respond(ApiError::other(500, "InternalError", "injected")),
                false => Verdict::Pass,
            }
        });
        let cfg = InformerConfig {
            initial_list: InitialList::NotOlderThan(server.revision()),
            seed: Some(8),
            ..Default::default()
        };
        let informer = Informer::new(api, cfg);
        let i = informer.clone();
        tokio::spawn(async move { i.run().await });
        assert!(informer.wait_for_sync().await);
        assert_eq!(informer.store().len(), 2, "the consistent list sees both");
        informer.stop();
        Ok(())
    });
    let lists = lists(requests(&server));
    let seen: Vec<(&str, u16)> = lists
        .iter()
        .map(|r| (r.resource_version.as_str(), r.code))
        .collect();
    let target = target.load(Ordering::SeqCst).to_string();
    assert_eq!(seen, [(target.as_str(), 504), ("", 500), ("", 200)]);
    // The 504 comes after the server's 3 s wait for its cache; the fallback follows at once.
    assert!(
        lists[1].at_secs - lists[0].at_secs < 3.2,
        "the fallback is sent at once, not after a backoff: {lists:?}"
    );
}

#[test]
fn a_watch_that_brought_only_a_bookmark_before_closing_is_rewatched_not_relisted() {
    // Bookmarks every 100 ms; 150 ms after the first watch began the server drops it, when it
    // has carried one bookmark and no object. client-go counts the bookmark as an event: the
    // next request is a watch, not a relist, and no "very short watch" is counted.
    let (mut sim, server) = SimBuilder::new(209)
        .cluster(|c| {
            c.access_log = true;
            c.bookmark_interval = Duration::from_millis(100);
        })
        .build()
        .expect("valid");
    let out: Arc<std::sync::Mutex<Option<Informer<ConfigMap>>>> = Arc::default();
    let o = out.clone();
    sim.client("client", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        let cfg = InformerConfig {
            seed: Some(9),
            ..Default::default()
        };
        let informer = Informer::new(api, cfg);
        *o.lock().unwrap() = Some(informer.clone());
        let i = informer.clone();
        tokio::spawn(async move { i.run().await });
        tokio::time::sleep(secs(10)).await;
        informer.stop();
        Ok(())
    });
    while requests(&server).iter().all(|r| !r.watch) {
        assert!(sim.elapsed() < secs(5), "the informer never watched");
        sim.step().unwrap();
    }
    let began = sim.elapsed();
    step_until(&mut sim, began + Duration::from_millis(150)).unwrap();
    server.drop_watches(0);
    sim.run().unwrap();
    let log = requests(&server);
    let first = log.iter().position(|r| r.watch).unwrap();
    let next = log[first + 1..]
        .iter()
        .find(|r| r.path.ends_with("/configmaps"))
        .expect("a request after the dropped watch");
    assert!(next.watch, "re-watched, not relisted: {log:?}");
    let informer = out.lock().unwrap().take().unwrap();
    assert_eq!(informer.stats().short_watches, 0);
}
