//! RetryWatcher: resumes from the last delivered RV through every kind of interruption, and
//! stops with a typed error where resuming would lose or replay history.

use std::cell::RefCell;
use std::rc::Rc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use kube_chaos::retry_watcher::{Error, Event, RetryWatcher, RetryWatcherConfig};

use super::*;

fn config(timeout: u64) -> RetryWatcherConfig {
    RetryWatcherConfig {
        timeout: secs(timeout),
        deadline_grace: secs(5),
        seed: Some(7),
        ..Default::default()
    }
}

fn rv(o: &ConfigMap) -> u64 {
    o.resource_version().expect("rv").parse().expect("numeric")
}

/// `(type, name, rv)` of delivered events.
fn brief(e: &Event<ConfigMap>) -> (&'static str, String, u64) {
    (e.kind(), e.object().name_any(), rv(e.object()))
}

fn access_logged(seed: u64) -> SimBuilder {
    SimBuilder::new(seed).cluster(|c| c.access_log = true)
}

#[test]
fn retry_watcher_resumes_after_each_stream_end_with_no_gap_and_no_duplicate() {
    // The server ends every watch after 10 s while 30 writes spread over 60 s: the delivered
    // events are exactly the writes, in order, and every re-watch starts at the last RV.
    let server = run(access_logged(100), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let start = list_rv(&api).await?;
        let mut w = RetryWatcher::from_api(api.clone(), &start, config(10))?;
        let writer = tokio::spawn(async move {
            let mut written = Vec::new();
            for i in 0..30 {
                tokio::time::sleep(secs(2)).await;
                let o = api
                    .create(&PostParams::default(), &configmap(&format!("c{i}"), "v"))
                    .await
                    .expect("create");
                written.push(("ADDED", o.name_any(), rv(&o)));
            }
            written
        });
        let mut got = Vec::new();
        while got.len() < 30 {
            got.push(brief(&w.next().await.expect("open")?));
        }
        assert_eq!(got, writer.await?);
        Ok(())
    });
    let watches = watch_requests(&server);
    assert!(watches.len() >= 6, "about one watch per 10 s: {watches:?}");
    for pair in watches.windows(2) {
        let rv = |i: usize| pair[i].resource_version.parse::<u64>().expect("numeric RV");
        assert!(rv(1) >= rv(0), "{watches:?}");
    }
}

#[test]
fn retry_watcher_reconnects_after_a_partition_from_the_last_delivered_rv() {
    // A partition swallows a segment, so the stream goes silent for good; the client deadline
    // (timeout + grace) declares it dead, reconnects are refused until repair, then the watch
    // resumes from the last delivered RV and delivers what happened meanwhile, exactly once.
    let (mut sim, server) = access_logged(101).build().expect("valid");
    let s = server.clone();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    sim.client("client", async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client(&ClientConfig::new(1)));
        let start = list_rv(&api).await?;
        let mut w = RetryWatcher::from_api(api, &start, config(20))?;
        while g.borrow().len() < 6 {
            let e = brief(&w.next().await.expect("open")?);
            g.borrow_mut().push(e);
        }
        Ok(())
    });
    let mut written = Vec::new();
    for (at, name) in [
        (5, "before"),
        (15, "during-1"),
        (30, "during-2"),
        (50, "after-1"),
    ] {
        step_until(&mut sim, secs(at)).expect("steps");
        if name == "during-1" {
            sim.partition("client", replica_host(0));
        }
        if name == "after-1" {
            sim.repair("client", replica_host(0));
        }
        written.push(("ADDED", name.to_string(), put_configmap(&s, name, "v")));
    }
    step_until(&mut sim, secs(60)).expect("steps");
    written.push((
        "MODIFIED",
        "before".to_string(),
        put_configmap(&s, "before", "w"),
    ));
    written.push(("ADDED", "late".to_string(), put_configmap(&s, "late", "v")));
    sim.run().expect("ran");
    assert_eq!(*got.borrow(), written);
    let watches = watch_requests(&server);
    let resumed = watches
        .iter()
        .find(|w| w.at_secs > 40.0 && w.code == 200)
        .expect("a watch after the repair");
    assert_eq!(
        resumed.resource_version,
        written[0].2.to_string(),
        "resumed from the last RV delivered before the partition"
    );
}

#[test]
fn a_bookmark_advances_the_resume_rv_and_is_not_emitted() {
    // Writes to Secrets move the global RV while no ConfigMap changes: the bookmarks carry it,
    // nothing is emitted, and the next watch resumes from the bookmark's RV.
    let server = run(access_logged(102), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
        let secrets: Api<Secret> = Api::default_namespaced(client);
        let start = list_rv(&api).await?;
        let mut w = RetryWatcher::from_api(api.clone(), &start, config(100))?;
        for i in 0..3 {
            let s: Secret =
                serde_json::from_value(serde_json::json!({"metadata": {"name": format!("s{i}")}}))?;
            secrets.create(&PostParams::default(), &s).await?;
        }
        let after_secrets = server.revision();
        let quiet = tokio::time::timeout(secs(150), w.next()).await;
        assert!(quiet.is_err(), "bookmarks are not emitted: {quiet:?}");
        let o = api
            .create(&PostParams::default(), &configmap("x", "v"))
            .await?;
        assert_eq!(
            brief(&w.next().await.expect("open")?),
            ("ADDED", "x".into(), rv(&o))
        );
        assert!(rv(&o) > after_secrets);
        Ok(())
    });
    let watches = watch_requests(&server);
    assert!(watches.len() >= 2, "{watches:?}");
    let second: u64 = watches[1].resource_version.parse().expect("rv");
    let first: u64 = watches[0].resource_version.parse().expect("rv");
    assert_eq!(
        second,
        first + 3,
        "resumed from the bookmark's RV (after the 3 Secret writes)"
    );
}

#[test]
fn a_410_in_stream_is_an_expired_error_and_ends_the_stream() {
    // The start RV left a 4-event window: the server's in-stream 410 becomes Error::Expired.
    run(
        SimBuilder::new(103).cluster(|c| c.watch_cache_capacity = 4),
        |client, _| async move {
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            let start = list_rv(&api).await?;
            for i in 0..10 {
                api.create(&PostParams::default(), &configmap(&format!("c{i}"), "v"))
                    .await?;
            }
            let mut w = RetryWatcher::from_api(api, &start, config(60))?;
            match w.next().await {
                Some(Err(Error::Expired {
                    resource_version,
                    message,
                })) => {
                    assert_eq!(resource_version, start);
                    assert!(message.contains("too old resource version"), "{message}");
                }
                other => panic!("expected Expired, got {other:?}"),
            }
            assert!(
                w.next().await.is_none(),
                "the stream ends after a terminal error"
            );
            Ok(())
        },
    );
}

#[test]
fn a_410_at_watch_start_is_an_expired_error_too() {
    // An HTTP 410 answer to the watch request itself (client-go's RetryWatcher loops on it).
    run(SimBuilder::new(104), |client, server| async move {
        server.add_hook(|r: &RequestInfo| {
            if r.is_watch {
                Verdict::Respond(ApiError::expired("too old resource version: 1 (40)"))
            } else {
                Verdict::Pass
            }
        });
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut w = RetryWatcher::from_api(api, "1", config(60))?;
        assert!(matches!(w.next().await, Some(Err(Error::Expired { .. }))));
        assert!(w.next().await.is_none());
        Ok(())
    });
}

#[test]
fn a_429_with_retry_after_is_honoured_and_restarts_are_at_least_a_second_apart() {
    // The first two watch requests get 429 with retryAfterSeconds=7; the third gets a watch
    // that closes at once, the fourth a real one. The request times show the waits.
    let server = run(access_logged(105), |client, server| async move {
        let calls = std::sync::atomic::AtomicU32::new(0);
        server.add_hook(move |r: &RequestInfo| {
            if !r.is_watch {
                return Verdict::Pass;
            }
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 1 => {
                    let mut e =
                        ApiError::other(429, "TooManyRequests", "storage is (re)initializing");
                    e.retry_after_seconds = Some(7);
                    Verdict::Respond(e)
                }
                2 => Verdict::EmptyWatch,
                _ => Verdict::Pass,
            }
        });
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let start = list_rv(&api).await?;
        let mut w = RetryWatcher::from_api(api.clone(), &start, config(60))?;
        let o = api
            .create(&PostParams::default(), &configmap("a", "v"))
            .await?;
        assert_eq!(
            brief(&w.next().await.expect("open")?),
            ("ADDED", "a".into(), rv(&o))
        );
        Ok(())
    });
    let watches = watch_requests(&server);
    let codes: Vec<u16> = watches.iter().map(|w| w.code).collect();
    assert_eq!(codes, [429, 429, 200, 200]);
    let gaps: Vec<f64> = watches
        .windows(2)
        .map(|p| p[1].at_secs - p[0].at_secs)
        .collect();
    assert!(
        gaps[0] >= 7.0 && gaps[1] >= 7.0,
        "Retry-After honoured: {gaps:?}"
    );
    assert!(
        gaps[2] >= 1.0 && gaps[2] < 1.2,
        "min restart delay 1 s plus at most 10% jitter: {gaps:?}"
    );
}

#[test]
fn unauthorized_and_forbidden_are_terminal() {
    // 401 and 403 stop the watcher with a typed error and no retry.
    for (code, reason) in [(401u16, "Unauthorized"), (403, "Forbidden")] {
        let server = run(access_logged(106), move |client, server| async move {
            server.add_hook(move |r: &RequestInfo| {
                if r.is_watch {
                    Verdict::Respond(ApiError::other(
                        code,
                        reason,
                        "configmaps is forbidden: User \"x\" cannot watch",
                    ))
                } else {
                    Verdict::Pass
                }
            });
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            let mut w = RetryWatcher::from_api(api, "5", config(60))?;
            match (code, w.next().await) {
                (401, Some(Err(Error::Unauthorized(_))))
                | (403, Some(Err(Error::Forbidden(_)))) => {}
                (_, other) => panic!("{code}: expected a terminal error, got {other:?}"),
            }
            assert!(w.next().await.is_none());
            Ok(())
        });
        assert_eq!(watch_requests(&server).len(), 1, "{code}: no retry");
    }
}

#[test]
fn a_watch_function_that_ignores_its_options_yields_historical_replay() {
    // The documented pitfall: the function builds fresh options without the resourceVersion,
    // so the server sends the current state as ADDED, older than what was delivered.
    run(SimBuilder::new(107), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        for i in 0..3 {
            api.create(&PostParams::default(), &configmap(&format!("c{i}"), "v"))
                .await?;
        }
        let start = list_rv(&api).await?;
        let mut w = RetryWatcher::new(&start, ignoring_options(api.clone()), config(60))?;
        match w.next().await {
            Some(Err(Error::HistoricalReplay {
                event,
                name,
                got,
                last,
            })) => {
                assert_eq!((event, name.as_str()), ("ADDED", "default/c0"));
                assert!(got < last && last.to_string() == start, "{got} < {last}");
            }
            other => panic!("expected HistoricalReplay, got {other:?}"),
        }
        assert!(w.next().await.is_none());
        Ok(())
    });
}

#[test]
fn stop_ends_the_stream_and_is_idempotent() {
    // stop() from a handle while the watcher waits for events ends the stream.
    run(SimBuilder::new(108), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let start = list_rv(&api).await?;
        let mut w = RetryWatcher::from_api(api, &start, config(60))?;
        let handle = w.stop_handle();
        tokio::spawn(async move {
            tokio::time::sleep(secs(3)).await;
            handle.stop();
            handle.stop();
        });
        assert!(w.next().await.is_none());
        w.stop();
        assert!(w.next().await.is_none());
        Ok(())
    });
}
