//! watch: where a stream starts, what it carries, when it ends.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;
use tokio::time::Instant;

use super::*;

/// `(type, name)` of an event, for compact assertions.
fn brief(e: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED", o.name_any()),
        WatchEvent::Modified(o) => ("MODIFIED", o.name_any()),
        WatchEvent::Deleted(o) => ("DELETED", o.name_any()),
        WatchEvent::Bookmark(_) => ("BOOKMARK", String::new()),
        WatchEvent::Error(e) => ("ERROR", e.code.to_string()),
    }
}

fn rv(o: &ConfigMap) -> u64 {
    o.resource_version()
        .expect("stored objects carry an RV")
        .parse()
        .expect("numeric RV")
}

#[test]
fn a_watch_from_rv_0_starts_with_synthetic_added_then_streams_changes() {
    // Proves RV "0": the current state as ADDED events, then every later change in order.
    run(SimBuilder::new(30), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        create_many(&api, 2).await?;
        let mut s = api
            .watch(&WatchParams::default().disable_bookmarks(), "0")
            .await?
            .boxed();
        api.create(&PostParams::default(), &cm("c2", "v")).await?;
        api.patch(
            "c0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"k": "w"}})),
        )
        .await?;
        api.delete("c1", &Default::default()).await?;
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(brief(&s.try_next().await?.expect("stream open")));
        }
        let want = [
            ("ADDED", "c0"),
            ("ADDED", "c1"),
            ("ADDED", "c2"),
            ("MODIFIED", "c0"),
            ("DELETED", "c1"),
        ];
        assert_eq!(got, want.map(|(t, n)| (t, n.to_string())));
        Ok(())
    });
}

#[test]
fn a_watch_from_rv_n_yields_every_later_change_in_order_and_nothing_older() {
    // Proves RV N: exactly the events with RV > N, strictly increasing, no synthetic state.
    run(SimBuilder::new(31), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut rvs = Vec::new();
        for i in 0..5 {
            rvs.push(rv(&api
                .create(&PostParams::default(), &cm(&format!("c{i}"), "v"))
                .await?));
        }
        let mut s = api
            .watch(
                &WatchParams::default().disable_bookmarks(),
                &rvs[1].to_string(),
            )
            .await?
            .boxed();
        let mut seen = Vec::new();
        for _ in 0..3 {
            match s.try_next().await?.expect("stream open") {
                WatchEvent::Added(o) => seen.push((o.name_any(), rv(&o))),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            seen,
            vec![
                ("c2".into(), rvs[2]),
                ("c3".into(), rvs[3]),
                ("c4".into(), rvs[4])
            ]
        );
        Ok(())
    });
}

#[test]
fn a_watch_older_than_the_window_gets_http_200_then_one_410_error_event_and_ends() {
    // Proves the in-stream 410: the request succeeds, the first and only event is ERROR 410.
    let server = run(
        SimBuilder::new(32).cluster(|c| c.watch_cache_capacity = 4),
        |client, _| async move {
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            let first = rv(&api
                .create(&PostParams::default(), &cm("first", "v"))
                .await?);
            create_many(&api, 10).await?;
            let mut s = api
                .watch(&WatchParams::default(), &first.to_string())
                .await?
                .boxed();
            match s.try_next().await?.expect("one event") {
                WatchEvent::Error(e) => {
                    assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
                    assert!(
                        e.message
                            .contains(&format!("too old resource version: {first}")),
                        "{}",
                        e.message
                    );
                }
                other => panic!("expected a 410 ERROR event, got {other:?}"),
            }
            assert!(
                s.try_next().await?.is_none(),
                "the stream closes after the 410"
            );
            Ok(())
        },
    );
    assert_eq!(server.stats().expired, 1);
}

#[test]
fn timeout_seconds_ends_the_stream_at_that_simulated_time() {
    // Proves timeoutSeconds is honoured: the server closes the stream after exactly that long.
    run(SimBuilder::new(33), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let t0 = Instant::now();
        let mut s = api
            .watch(&WatchParams::default().timeout(42).disable_bookmarks(), "0")
            .await?
            .boxed();
        assert!(s.try_next().await?.is_none());
        let took = t0.elapsed();
        assert!(took >= secs(42) && took < secs(43), "closed after {took:?}");
        Ok(())
    });
}

#[test]
fn a_watch_without_timeout_seconds_closes_within_30_to_60_minutes() {
    // Proves the min-request-timeout rule, `30 min × (1 + rand)`, and that rand varies by seed.
    // kube's Api::watch always sends timeoutSeconds, so the request is built by hand.
    let mut lifetimes = Vec::new();
    for seed in 0..6 {
        let out = std::rc::Rc::new(std::cell::Cell::new(Duration::ZERO));
        let o = out.clone();
        let builder = SimBuilder::new(seed)
            .tick(Duration::from_secs(1))
            .duration(secs(7200));
        run(builder, move |client, _| async move {
            let req = http::Request::get(
                "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0",
            )
            .body(Vec::new())?;
            let t0 = Instant::now();
            let mut s = client.request_events::<ConfigMap>(req).await?.boxed();
            assert!(
                s.try_next().await?.is_none(),
                "an empty namespace sends nothing"
            );
            o.set(t0.elapsed());
            Ok(())
        });
        lifetimes.push(out.get());
    }
    for l in &lifetimes {
        assert!(
            *l >= secs(1800) && *l < secs(3600),
            "lifetime {l:?} outside [30m, 60m)"
        );
    }
    lifetimes.dedup();
    assert!(
        lifetimes.len() > 1,
        "the lifetime is randomised per seed: {lifetimes:?}"
    );
}

#[test]
fn bookmarks_arrive_every_minute_and_two_seconds_before_the_deadline() {
    // Proves bookmark cadence for timeoutSeconds=300: at 60, 120, 180, 240 and 298 s, each
    // carrying the current RV, then the stream closes at 300 s.
    run(SimBuilder::new(34), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let latest = rv(&api.create(&PostParams::default(), &cm("a", "v")).await?);
        let t0 = Instant::now();
        let mut s = api
            .watch(&WatchParams::default().timeout(300), &latest.to_string())
            .await?
            .boxed();
        let mut at = Vec::new();
        while let Some(e) = s.try_next().await? {
            match e {
                WatchEvent::Bookmark(b) => {
                    assert_eq!(b.metadata.resource_version, latest.to_string());
                    at.push(t0.elapsed().as_secs());
                }
                other => panic!("only bookmarks expected, got {other:?}"),
            }
        }
        assert_eq!(at, [60, 120, 180, 240, 298]);
        assert_eq!(t0.elapsed().as_secs(), 300);
        Ok(())
    });
}

#[test]
fn without_allow_watch_bookmarks_no_bookmark_is_sent() {
    // Proves bookmarks are opt-in.
    run(SimBuilder::new(35), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let events: Vec<_> = api
            .watch(
                &WatchParams::default().timeout(200).disable_bookmarks(),
                "0",
            )
            .await?
            .try_collect()
            .await?;
        assert!(events.is_empty(), "{events:?}");
        Ok(())
    });
}

#[test]
fn send_initial_events_ends_the_initial_state_with_the_initial_events_end_bookmark() {
    // Proves the streaming-list contract: ADDED per object, then a bookmark annotated
    // `k8s.io/initial-events-end` at the RV of that state, then live changes.
    run(SimBuilder::new(36), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        create_many(&api, 3).await?;
        let mut s = api
            .watch(&WatchParams::streaming_lists(), "")
            .await?
            .boxed();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(brief(&s.try_next().await?.expect("open")));
        }
        assert_eq!(got, ["c0", "c1", "c2"].map(|n| ("ADDED", n.to_string())));
        let list_rv = api
            .list_metadata(&Default::default())
            .await?
            .metadata
            .resource_version
            .expect("rv");
        match s.try_next().await?.expect("open") {
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                assert_eq!(b.metadata.resource_version, list_rv);
            }
            other => panic!("expected the initial-events-end bookmark, got {other:?}"),
        }
        api.create(&PostParams::default(), &cm("late", "v")).await?;
        assert_eq!(
            brief(&s.try_next().await?.expect("open")),
            ("ADDED", "late".to_string())
        );
        Ok(())
    });
}

#[test]
fn label_selector_transitions_turn_modifications_into_added_and_deleted() {
    // Proves a selected watch sees an object move in (ADDED) and out (DELETED) of its selector.
    run(SimBuilder::new(37), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut s = api
            .watch(
                &WatchParams::default().labels("app=web").disable_bookmarks(),
                "0",
            )
            .await?
            .boxed();
        api.create(&PostParams::default(), &cm("x", "v")).await?;
        let label = |v: serde_json::Value| {
            Patch::Merge(serde_json::json!({"metadata": {"labels": {"app": v}}}))
        };
        api.patch("x", &PatchParams::default(), &label("web".into()))
            .await?;
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"k": "2"}})),
        )
        .await?;
        api.patch("x", &PatchParams::default(), &label("db".into()))
            .await?;
        api.create(&PostParams::default(), &cm("y", "v")).await?;
        api.patch("y", &PatchParams::default(), &label("web".into()))
            .await?;
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(brief(&s.try_next().await?.expect("open")));
        }
        let want = [
            ("ADDED", "x"),
            ("MODIFIED", "x"),
            ("DELETED", "x"),
            ("ADDED", "y"),
        ];
        assert_eq!(got, want.map(|(t, n)| (t, n.to_string())));
        Ok(())
    });
}
