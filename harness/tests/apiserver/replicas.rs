//! Replicas: per-replica watch caches that lag, pause and restart, and the client's replica
//! choice per connection.

use std::cell::RefCell;
use std::rc::Rc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::ResourceExt;
use kube_chaos_harness::net::{replica_host, ReplicaPolicy};

use super::*;

/// An RV-"0" list: any state the replica's cache holds.
fn any() -> ListParams {
    ListParams::default().match_any()
}

fn rv_of(l: &kube::core::ObjectList<ConfigMap>) -> u64 {
    l.metadata
        .resource_version
        .as_deref()
        .expect("lists carry an RV")
        .parse()
        .expect("numeric")
}

#[test]
fn a_lagging_replica_serves_an_older_rv_0_list_than_the_store_holds() {
    // Proves time travel: replica 1 trails the store by 30 s, so an RV-"0" list through it
    // misses recent writes and carries an older RV, until the lag has passed.
    let builder = SimBuilder::new(40).replicas(2);
    let (mut sim, server) = builder.build().expect("valid");
    server.set_cache_lag(1, secs(30));
    let s = server.clone();
    sim.client("client", async move {
        let client = client(&ClientConfig::new(2).policy(ReplicaPolicy::Pinned(1)));
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        tokio::time::sleep(secs(1)).await;
        create_many(&api, 3).await?;
        let fresh = api.list(&ListParams::default()).await?;
        let stale = api.list(&any()).await?;
        assert_eq!(fresh.items.len(), 3);
        assert!(
            stale.items.is_empty(),
            "the lagging cache has not seen the writes: {:?}",
            stale.items
        );
        assert!(
            rv_of(&stale) < rv_of(&fresh),
            "{} < {}",
            rv_of(&stale),
            rv_of(&fresh)
        );
        assert_eq!(s.cache_revision(0), s.revision(), "replica 0 has no lag");
        tokio::time::sleep(secs(31)).await;
        let caught_up = api.list(&any()).await?;
        assert_eq!(
            (caught_up.items.len(), rv_of(&caught_up)),
            (3, rv_of(&fresh))
        );
        Ok(())
    });
    sim.run().expect("ran");
}

#[test]
fn a_paused_cache_serves_its_old_state_to_lists_and_watches_until_resumed() {
    // Proves pause/resume: while paused, RV-"0" lists and watches see nothing new; on resume
    // the watch delivers what it missed, in order.
    run(SimBuilder::new(41), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        create_many(&api, 1).await?;
        server.pause_cache(0);
        let before = rv_of(&api.list(&any()).await?);
        let mut w = api
            .watch(
                &WatchParams::default().disable_bookmarks(),
                &before.to_string(),
            )
            .await?
            .boxed();
        api.create(&Default::default(), &cm("during", "v")).await?;
        let paused = api.list(&any()).await?;
        assert_eq!((paused.items.len(), rv_of(&paused)), (1, before));
        assert!(
            tokio::time::timeout(secs(20), w.try_next()).await.is_err(),
            "a paused cache delivers no events"
        );
        server.resume_cache(0);
        match w.try_next().await?.expect("open") {
            WatchEvent::Added(o) => assert_eq!(o.name_any(), "during"),
            other => panic!("expected ADDED during, got {other:?}"),
        }
        assert_eq!(api.list(&any()).await?.items.len(), 2);
        Ok(())
    });
}

#[test]
fn a_crashed_replica_ends_its_watches_and_after_restart_answers_old_rvs_with_410() {
    // Proves the restart contract: the crash ends an open watch (the client sees the stream
    // end or fail, never hang); the restarted replica's cache starts at the current revision,
    // so a watch from before the crash gets the in-stream 410.
    let (mut sim, server) = SimBuilder::new(42).build().expect("valid");
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let l = log.clone();
    sim.client("client", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        let created = api.create(&Default::default(), &cm("c0", "v")).await?;
        let from = created.resource_version().expect("rv");
        let mut w = api
            .watch(
                &WatchParams::default().timeout(600).disable_bookmarks(),
                &from,
            )
            .await?
            .boxed();
        // The crash happens at 5 s; the stream must end well before its 600 s timeout.
        let end = tokio::time::timeout(secs(60), w.next())
            .await
            .expect("the crash ends the watch");
        l.borrow_mut().push(format!(
            "watch ended: {}",
            if end.is_none() { "eof" } else { "error" }
        ));
        tokio::time::sleep_until(tokio::time::Instant::now() + secs(20)).await;
        let mut w = api
            .watch(&WatchParams::default().disable_bookmarks(), &from)
            .await?
            .boxed();
        match w.try_next().await?.expect("one event") {
            WatchEvent::Error(e) => l
                .borrow_mut()
                .push(format!("rewatch: {} {}", e.code, e.reason)),
            other => panic!("expected 410, got {other:?}"),
        }
        Ok(())
    });
    while sim.elapsed() < secs(5) {
        sim.step().expect("steps");
    }
    sim.crash(replica_host(0));
    put(&server, "written-elsewhere");
    while sim.elapsed() < secs(10) {
        sim.step().expect("steps");
    }
    sim.bounce(replica_host(0));
    sim.run().expect("ran");
    assert_eq!(*log.borrow(), ["watch ended: eof", "rewatch: 410 Expired"]);
}

/// The replica that served each watch request, in order of arrival.
fn watch_replicas(seed: u64, policy: ReplicaPolicy, n: usize) -> Vec<String> {
    let builder = SimBuilder::new(seed)
        .replicas(3)
        .cluster(|c| c.access_log = true);
    let (mut sim, server) = builder.build().expect("valid");
    sim.client("client", async move {
        let api: Api<ConfigMap> =
            Api::default_namespaced(client(&ClientConfig::new(3).policy(policy)));
        // Concurrent watches each hold their connection, so each one dials anew.
        let mut streams = Vec::new();
        for _ in 0..n {
            streams.push(
                api.watch(&WatchParams::default().timeout(5).disable_bookmarks(), "0")
                    .await?,
            );
        }
        Ok(())
    });
    sim.run().expect("ran");
    server
        .access_log()
        .iter()
        .filter(|l| l.contains("watch=true"))
        .map(|l| l.split(' ').nth(1).expect("replica field").to_string())
        .collect()
}

#[test]
fn the_replica_is_chosen_per_connection_by_a_seeded_policy() {
    // Proves round robin visits every replica in turn, and the random policy is a pure
    // function of its seed.
    assert_eq!(
        watch_replicas(1, ReplicaPolicy::RoundRobin, 6),
        ["r0", "r1", "r2", "r0", "r1", "r2"]
    );
    let a = watch_replicas(1, ReplicaPolicy::Random { seed: 7 }, 12);
    assert_eq!(
        a,
        watch_replicas(2, ReplicaPolicy::Random { seed: 7 }, 12),
        "same policy seed, same picks"
    );
    assert_ne!(
        a,
        watch_replicas(1, ReplicaPolicy::Random { seed: 8 }, 12),
        "another seed, other picks"
    );
    assert!(
        ["r0", "r1", "r2"].iter().all(|r| a.iter().any(|x| x == r)),
        "{a:?}"
    );
    assert_eq!(
        watch_replicas(1, ReplicaPolicy::Pinned(2), 3),
        ["r2", "r2", "r2"]
    );
}

/// The replica that served each of `n` sequential lists by one client.
fn list_replicas(keep_alive: bool, n: usize) -> Vec<String> {
    let builder = SimBuilder::new(3)
        .replicas(2)
        .cluster(|c| c.access_log = true);
    let (mut sim, server) = builder.build().expect("valid");
    sim.client("client", async move {
        let config = ClientConfig::new(2).keep_alive(keep_alive);
        let api: Api<ConfigMap> = Api::default_namespaced(client(&config));
        for _ in 0..n {
            api.list(&ListParams::default()).await?;
        }
        Ok(())
    });
    sim.run().expect("ran");
    server
        .access_log()
        .iter()
        .map(|l| l.split(' ').nth(1).expect("replica field").to_string())
        .collect()
}

#[test]
fn without_keep_alive_every_request_dials_anew_and_picks_its_replica() {
    // Proves the `keep_alive` knob: with it, sequential requests share one connection (one
    // replica); without it, each request is a new connection, so round robin alternates.
    assert_eq!(list_replicas(true, 4), ["r0", "r0", "r0", "r0"]);
    assert_eq!(list_replicas(false, 4), ["r0", "r1", "r0", "r1"]);
}
