//! Informer: lists then watches, keeps its store equal to the server through faults, and
//! tells handlers everything in order, with tombstones for deletions it could not watch.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use kube_chaos::informer::{
    DeletedObject, HandlerFns, Informer, InformerConfig, InitialList, ResourceEventHandler,
    NAMESPACE_INDEX,
};

use kube_chaos_harness::sim::crash_replica;

use super::*;

/// Records every notification as a line.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, l: String) {
        self.0.lock().unwrap().push(l);
    }
}

impl ResourceEventHandler<ConfigMap> for Recorder {
    fn on_add(&self, o: &Arc<ConfigMap>, initial: bool) {
        self.push(format!("add {} {initial}", o.name_any()));
    }
    fn on_update(&self, _old: &Arc<ConfigMap>, new: &Arc<ConfigMap>) {
        self.push(format!("update {}", new.name_any()));
    }
    fn on_delete(&self, d: &DeletedObject<ConfigMap>) {
        match d {
            DeletedObject::Object(o) => self.push(format!("delete {}", o.name_any())),
            DeletedObject::Unknown(t) => self.push(format!("tombstone {}", t.key)),
        }
    }
}

fn config(seed: u64) -> InformerConfig {
    InformerConfig {
        seed: Some(seed),
        ..Default::default()
    }
}

fn start(informer: &Informer<ConfigMap>) {
    let i = informer.clone();
    tokio::spawn(async move { i.run().await });
}

/// `name -> resourceVersion` of the informer's store and of the server.
fn store_view(i: &Informer<ConfigMap>) -> Vec<(String, String)> {
    i.store()
        .list()
        .iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap()))
        .collect()
}

fn server_view(server: &ApiServer) -> Vec<(String, String)> {
    server
        .objects("v1", "ConfigMap")
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            (
                m["name"].as_str().unwrap().to_string(),
                m["resourceVersion"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn handlers_see_the_initial_list_then_every_change_in_order() {
    // A recording handler sees adds flagged as initial, then the watched changes.
    run(SimBuilder::new(200), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        for n in ["c0", "c1"] {
            api.create(&PostParams::default(), &configmap(n, "v"))
                .await?;
        }
        let informer = Informer::new(api.clone(), config(1));
        let rec = Recorder::default();
        let reg = informer.add_handler(rec.clone());
        assert!(!informer.has_synced() && !reg.has_synced());
        start(&informer);
        assert!(informer.wait_for_sync().await);
        api.create(&PostParams::default(), &configmap("c2", "v"))
            .await?;
        api.patch(
            "c0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"k": "w"}})),
        )
        .await?;
        api.delete("c1", &DeleteParams::default()).await?;
        tokio::time::sleep(secs(1)).await;
        assert!(reg.has_synced());
        assert_eq!(
            rec.lines(),
            [
                "add c0 true",
                "add c1 true",
                "add c2 false",
                "update c0",
                "delete c1"
            ]
        );
        assert_eq!(informer.store().keys(), ["default/c0", "default/c2"]);
        informer.stop();
        informer.stop();
        Ok(())
    });
}

#[test]
fn a_handler_added_after_start_first_gets_synthetic_adds() {
    // A late handler is told about what the store holds before any later change.
    run(SimBuilder::new(201), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        api.create(&PostParams::default(), &configmap("a", "v"))
            .await?;
        let informer = Informer::new(api.clone(), config(2));
        start(&informer);
        informer.wait_for_sync().await;
        let late = Recorder::default();
        let reg = informer.add_handler(late.clone());
        api.create(&PostParams::default(), &configmap("b", "v"))
            .await?;
        tokio::time::sleep(secs(1)).await;
        assert_eq!(late.lines(), ["add a true", "add b false"]);
        assert!(reg.has_synced());
        informer.stop();
        Ok(())
    });
}

#[test]
fn indexes_and_selectors_shape_the_store() {
    // An all-namespaces informer with a label selector; the namespace index and a custom index.
    run(SimBuilder::new(202), |client, _| async move {
        let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        ns_api
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": "team"}}))?,
            )
            .await?;
        for (ns, name, app) in [
            ("default", "a", "web"),
            ("team", "b", "web"),
            ("team", "c", "db"),
        ] {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
            let mut cm = configmap(name, "v");
            cm.metadata.labels = Some(
                [
                    ("app".to_string(), app.to_string()),
                    ("tier".into(), "x".into()),
                ]
                .into(),
            );
            api.create(&PostParams::default(), &cm).await?;
        }
        let all: Api<ConfigMap> = Api::all(client);
        let cfg = InformerConfig {
            label_selector: Some("tier=x".into()),
            ..config(3)
        };
        let informer = Informer::new(all, cfg);
        informer.add_indexer("app", |o: &ConfigMap| {
            o.labels().get("app").cloned().into_iter().collect()
        })?;
        start(&informer);
        informer.wait_for_sync().await;
        let store = informer.store();
        let names = |v: Vec<Arc<ConfigMap>>| v.iter().map(|o| o.name_any()).collect::<Vec<_>>();
        assert_eq!(names(store.by_index(NAMESPACE_INDEX, "team")), ["b", "c"]);
        assert_eq!(names(store.by_index("app", "web")), ["a", "b"]);
        assert_eq!(
            store.len(),
            3,
            "kube-root-ca style objects without the label are not listed"
        );
        informer.stop();
        Ok(())
    });
}

#[test]
fn a_deletion_during_a_partition_arrives_as_a_tombstone_after_the_410_relist() {
    // The partition kills the watch silently; meanwhile `gone` is deleted and 20 writes push
    // the resume RV out of an 8-event window. After repair: 410, relist from "", tombstone.
    let rec = Recorder::default();
    let out: Rc<RefCell<Option<Informer<ConfigMap>>>> = Rc::default();
    let (r, o) = (rec.clone(), out.clone());
    let story = partitioned_past_the_window(secs(200), |api| async move {
        let cfg = InformerConfig {
            min_watch_timeout: secs(30),
            deadline_grace: secs(5),
            ..config(4)
        };
        let informer = Informer::new(api, cfg);
        informer.add_handler(r);
        start(&informer);
        *o.borrow_mut() = Some(informer);
        tokio::time::sleep(secs(400)).await;
        Ok(())
    });
    let server = story.server;
    let informer = out.borrow_mut().take().expect("informer");
    let lines = rec.lines();
    assert!(
        lines.contains(&"tombstone default/gone".to_string()),
        "{lines:#?}"
    );
    assert!(!lines.contains(&"delete gone".to_string()));
    let stats = informer.stats();
    assert!(stats.expired >= 1 && stats.relists >= 1, "{stats:?}");
    assert_eq!(store_view(&informer), server_view(&server));
}

/// Tracks the highest RV each key has reached in a handler's view; records any step back.
#[derive(Clone, Default)]
struct Monotonic(Arc<Mutex<Highest>>);

/// Highest RV per key, and the steps back seen.
type Highest = (std::collections::BTreeMap<String, u64>, Vec<String>);

impl Monotonic {
    fn see(&self, o: &ConfigMap, what: &str) {
        let rv: u64 = o.resource_version().unwrap().parse().unwrap();
        let mut g = self.0.lock().unwrap();
        let last = g.0.insert(o.name_any(), rv).unwrap_or(0);
        if rv < last {
            g.1.push(format!(
                "{what} {} moved back from RV {last} to {rv}",
                o.name_any()
            ));
        }
    }
    fn violations(&self) -> Vec<String> {
        self.0.lock().unwrap().1.clone()
    }
}

impl ResourceEventHandler<ConfigMap> for Monotonic {
    fn on_add(&self, o: &Arc<ConfigMap>, _: bool) {
        self.see(o, "add");
    }
    fn on_update(&self, _: &Arc<ConfigMap>, new: &Arc<ConfigMap>) {
        self.see(new, "update");
    }
}

#[test]
fn the_store_equals_the_server_after_partitions_restarts_and_compactions() {
    // Churn through two replicas while the informer is partitioned twice, its replica is
    // restarted and history is compacted every 30 s; after settling, the store holds exactly
    // the server's objects at their RVs, and no key ever moved backwards in the handler's view.
    let builder = SimBuilder::new(204).replicas(2).cluster(|c| {
        c.watch_cache_capacity = 16;
        c.compaction_interval = Some(secs(30));
    });
    let (mut sim, server) = builder.build().expect("valid");
    let mono = Monotonic::default();
    let out: Rc<RefCell<Option<Informer<ConfigMap>>>> = Rc::default();
    let (m, o) = (mono.clone(), out.clone());
    sim.client("informer", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(2)));
        let cfg = InformerConfig {
            min_watch_timeout: secs(20),
            deadline_grace: secs(5),
            ..config(5)
        };
        let informer = Informer::new(api, cfg);
        informer.add_handler(m);
        start(&informer);
        *o.borrow_mut() = Some(informer);
        tokio::time::sleep(secs(500)).await;
        Ok(())
    });
    sim.client("writer", async move {
        use rand::{Rng, SeedableRng};
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(2)));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(204);
        for i in 0..200u32 {
            tokio::time::sleep(secs(1)).await;
            let name = format!("c{}", rng.random_range(0..10));
            let _ = match rng.random_range(0..4) {
                0 => api.delete(&name, &DeleteParams::default()).await.map(drop),
                1 => api
                    .create(&PostParams::default(), &configmap(&name, "v"))
                    .await
                    .map(drop),
                _ => {
                    let patch = Patch::Merge(serde_json::json!({"data": {"k": i.to_string()}}));
                    api.patch(&name, &PatchParams::default(), &patch)
                        .await
                        .map(drop)
                }
            };
        }
        Ok(())
    });
    type Fault<'a> = &'a dyn Fn(&mut turmoil::Sim);
    let faults: [(u64, Fault); 6] = [
        (30, &|s| s.partition("informer", replica_host(0))),
        (31, &|s| s.partition("informer", replica_host(1))),
        (60, &|s| s.repair("informer", replica_host(0))),
        (61, &|s| s.repair("informer", replica_host(1))),
        (90, &|s| crash_replica(s, &server, 1)),
        (110, &|s| s.bounce(replica_host(1))),
    ];
    for (at, fault) in faults {
        step_until(&mut sim, secs(at)).unwrap();
        fault(&mut sim);
    }
    step_until(&mut sim, secs(150)).unwrap();
    sim.partition("informer", replica_host(0));
    step_until(&mut sim, secs(170)).unwrap();
    sim.repair("informer", replica_host(0));
    sim.run().expect("ran");
    let informer = out.borrow_mut().take().expect("informer");
    assert_eq!(
        store_view(&informer),
        server_view(&server),
        "{:?}",
        informer.stats()
    );
    assert!(
        server_view(&server).len() >= 3,
        "the churn left objects to compare"
    );
    assert_eq!(mono.violations(), Vec::<String>::new());
    let stats = informer.stats();
    assert!(stats.relists >= 1 && stats.watches >= 10, "{stats:?}");
}

#[test]
fn a_watch_that_ends_at_once_with_no_event_is_a_failure_and_backs_off() {
    // The first three watches are closed at once by the server: each is a "very short watch",
    // so the informer relists after 0.8-1.6 s, 1.6-3.2 s, 3.2-6.4 s, then watches normally.
    let server = run(
        SimBuilder::new(205).cluster(|c| c.access_log = true),
        |client, server| async move {
            let calls = std::sync::atomic::AtomicU32::new(0);
            server.add_hook(move |r: &RequestInfo| {
                let n = if r.is_watch {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                } else {
                    99
                };
                if n < 3 {
                    Verdict::EmptyWatch
                } else {
                    Verdict::Pass
                }
            });
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            let informer = Informer::new(api.clone(), config(6));
            start(&informer);
            tokio::time::sleep(secs(20)).await;
            let stats = informer.stats();
            assert_eq!(
                (stats.short_watches, stats.lists, stats.watches),
                (3, 4, 4),
                "{stats:?}"
            );
            api.create(&PostParams::default(), &configmap("x", "v"))
                .await?;
            tokio::time::sleep(secs(1)).await;
            assert_eq!(informer.store().keys(), ["default/x"]);
            informer.stop();
            Ok(())
        },
    );
    let watches = watch_requests(&server);
    let gaps: Vec<f64> = watches
        .windows(2)
        .map(|p| p[1].at_secs - p[0].at_secs)
        .collect();
    for (gap, floor) in gaps.iter().zip([0.8, 1.6, 3.2]) {
        assert!(
            *gap >= floor && *gap < 2.0 * floor + 0.5,
            "backoff gaps {gaps:?}"
        );
    }
}

#[test]
fn after_a_restart_an_rv_0_first_list_can_travel_back_in_time_and_a_consistent_one_cannot() {
    // Process 1 sees `x` at its latest version through replica 0. Replica 1's cache is paused
    // at the older version. A restarted process whose first list is RV "0" (client-go's
    // default) on replica 1 sees the older version: its view moved backwards. With
    // InitialList::Consistent, or NotOlderThan the RV process 1 persisted, it does not.
    let (mut sim, server) = SimBuilder::new(206).replicas(2).build().expect("valid");
    let seen: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
    let s2 = seen.clone();
    let srv = server.clone();
    sim.client("controller", async move {
        use kube_chaos_harness::net::ReplicaPolicy;
        let on = |replica| {
            Api::<ConfigMap>::default_namespaced(client(
                &ClientConfig::new(2).policy(ReplicaPolicy::Pinned(replica)),
            ))
        };
        let first = on(0)
            .create(&PostParams::default(), &configmap("x", "old"))
            .await?;
        tokio::time::sleep(secs(1)).await;
        srv.pause_cache(1);
        on(0)
            .patch(
                "x",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"data": {"k": "new"}})),
            )
            .await?;
        let process1 = Informer::new(on(0), config(7));
        start(&process1);
        process1.wait_for_sync().await;
        let persisted: u64 = process1
            .store()
            .get("default/x")
            .unwrap()
            .resource_version()
            .unwrap()
            .parse()?;
        process1.stop();
        assert!(persisted > first.resource_version().unwrap().parse::<u64>()?);
        for (label, initial) in [
            ("any", InitialList::Any),
            ("consistent", InitialList::Consistent),
            ("not-older-than", InitialList::NotOlderThan(persisted)),
        ] {
            let process2 = Informer::new(
                on(1),
                InformerConfig {
                    initial_list: initial,
                    ..config(8)
                },
            );
            start(&process2);
            // A not-older-than list waits for the paused cache, then 504s: resume it then.
            let synced = tokio::time::timeout(secs(10), process2.wait_for_sync()).await;
            if synced.is_err() {
                srv.resume_cache(1);
                process2.wait_for_sync().await;
            }
            let x = process2.store().get("default/x").unwrap();
            s2.borrow_mut()
                .push((label.to_string(), x.data.as_ref().unwrap()["k"].clone()));
            process2.stop();
            srv.pause_cache(1);
        }
        Ok(())
    });
    sim.run().expect("ran");
    let seen = seen.borrow();
    assert_eq!(
        *seen,
        [
            ("any".to_string(), "old".to_string()),
            ("consistent".into(), "new".into()),
            ("not-older-than".into(), "new".into())
        ]
    );
}

#[test]
fn a_streaming_list_syncs_from_send_initial_events_and_then_keeps_watching() {
    // With streaming_list, the informer never issues a list request: one watch with
    // sendInitialEvents fills the store up to the initial-events-end bookmark, then goes on.
    let server = run(
        SimBuilder::new(207).cluster(|c| c.access_log = true),
        |client, _| async move {
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            for n in ["a", "b"] {
                api.create(&PostParams::default(), &configmap(n, "v"))
                    .await?;
            }
            let informer = Informer::new(
                api.clone(),
                InformerConfig {
                    streaming_list: true,
                    ..config(9)
                },
            );
            let rec = Recorder::default();
            informer.add_handler(rec.clone());
            start(&informer);
            informer.wait_for_sync().await;
            api.create(&PostParams::default(), &configmap("c", "v"))
                .await?;
            tokio::time::sleep(secs(1)).await;
            assert_eq!(rec.lines(), ["add a true", "add b true", "add c false"]);
            informer.stop();
            Ok(())
        },
    );
    let log = server.access_log();
    let gets: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(" GET /api/v1/namespaces/default/configmaps"))
        .collect();
    assert_eq!(gets.len(), 1, "{gets:#?}");
    assert!(gets[0].contains("sendInitialEvents=true"), "{}", gets[0]);
}

#[test]
fn resync_redelivers_every_cached_object_as_an_update() {
    // With a 30 s resync period, each handler gets on_update(obj, obj) for each object.
    run(SimBuilder::new(208), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        api.create(&PostParams::default(), &configmap("a", "v"))
            .await?;
        let informer = Informer::new(
            api,
            InformerConfig {
                resync_period: Some(secs(30)),
                ..config(10)
            },
        );
        let updates = Arc::new(Mutex::new(Vec::new()));
        let u = updates.clone();
        informer.add_handler(HandlerFns::new().on_update(
            move |old: &Arc<ConfigMap>, new: &Arc<ConfigMap>| {
                u.lock()
                    .unwrap()
                    .push((new.name_any(), Arc::ptr_eq(old, new)));
            },
        ));
        start(&informer);
        tokio::time::sleep(secs(65)).await;
        assert_eq!(
            *updates.lock().unwrap(),
            [("a".to_string(), true), ("a".to_string(), true)]
        );
        informer.stop();
        Ok(())
    });
}
