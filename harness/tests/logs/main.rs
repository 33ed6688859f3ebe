//! Logs are part of the contract (DESIGN.md §1): the runtime's important lines — a relist after
//! a 410, a historical replay, an expired resourceVersion — asserted with tracing-test, from
//! runs in the simulation.
//!
//! A test binary of its own: tracing-test installs one process-wide subscriber at trace level
//! for every target (`no-env-filter`, needed to keep the `kube_chaos` crate's lines rather
//! than only this test crate's), so sharing a process with the other runtime tests would
//! record every turmoil step and TCP segment of theirs too. Each test reads only the lines
//! under its own span, which covers its simulation's hosts (they run on the test's thread).

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use kube_chaos::informer::{Informer, InformerConfig};
use kube_chaos::retry_watcher::{Error, RetryWatcher, RetryWatcherConfig};
use kube_chaos_harness::sim::SimBuilder;
use kube_chaos_harness::testing::{
    configmap, ignoring_options, list_rv, partitioned_past_the_window, run, secs,
};
use tracing_test::traced_test;

fn watcher_config() -> RetryWatcherConfig {
    RetryWatcherConfig {
        timeout: secs(60),
        deadline_grace: secs(5),
        seed: Some(7),
        ..Default::default()
    }
}

/// The index of the first line containing every one of `parts`, or a message listing `lines`.
fn find(lines: &[&str], parts: &[&str]) -> Result<usize, String> {
    lines
        .iter()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .ok_or_else(|| format!("no line with {parts:?} in:\n{}", lines.join("\n")))
}

#[traced_test]
#[test]
fn the_informer_logs_the_410_with_its_rv_then_the_relist_from_the_latest_state() {
    // The partition kills the watch silently; meanwhile `gone` is deleted and 20 writes push
    // the resume RV out of an 8-event window. After repair the watch gets a 410: the informer
    // logs it with the RV it resumed from, then the relist from "" at the server's RV with
    // one tombstone — in that order.
    let story = partitioned_past_the_window(secs(100), |api| async move {
        let cfg = InformerConfig {
            min_watch_timeout: secs(30),
            deadline_grace: secs(5),
            seed: Some(4),
            ..Default::default()
        };
        let informer = Informer::new(api, cfg);
        tokio::spawn({
            let i = informer.clone();
            async move { i.run().await }
        });
        tokio::time::sleep(secs(200)).await;
        assert_eq!(informer.stats().relists, 1);
        informer.stop();
        Ok(())
    });
    let (resumed_from, latest) = (story.resumed_from, story.latest);
    logs_assert(|lines| {
        let synced = find(lines, &[" INFO ", "listed: synced", "from=\"0\""])?;
        let expired = find(
            lines,
            &[
                " INFO ",
                "resourceVersion expired (410): relisting from the latest state",
                &format!("rv={resumed_from}"),
            ],
        )?;
        let relisted = find(
            lines,
            &[
                " INFO ",
                "relisted",
                &format!("rv={latest}"),
                "from=\"\"",
                "objects=1",
                "tombstones=1",
            ],
        )?;
        if synced < expired && expired < relisted {
            Ok(())
        } else {
            Err(format!("out of order: {synced} {expired} {relisted}"))
        }
    });
}

#[traced_test]
#[test]
fn the_retry_watcher_logs_a_historical_replay_as_an_error_naming_both_rvs() {
    // A watch function that ignores its options re-watches from "": the server replays the
    // current state as ADDED, older than the start RV. The error line names the object, its
    // RV and the last delivered RV, and hints at the cause.
    let seen = std::rc::Rc::new(std::cell::Cell::new((0u64, 0u64)));
    let s = seen.clone();
    run(SimBuilder::new(107), move |kube, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(kube);
        let mut first = 0;
        for i in 0..3 {
            let o = api
                .create(&PostParams::default(), &configmap(&format!("c{i}"), "v"))
                .await?;
            if i == 0 {
                first = o.resource_version().expect("rv").parse()?;
            }
        }
        let start = list_rv(&api).await?;
        let mut w = RetryWatcher::new(&start, ignoring_options(api), watcher_config())?;
        assert!(matches!(
            w.next().await,
            Some(Err(Error::HistoricalReplay { .. }))
        ));
        s.set((first, start.parse()?));
        Ok(())
    });
    let (got, last) = seen.get();
    logs_assert(|lines| {
        find(
            lines,
            &[
                " ERROR ",
                "kube_chaos::retry_watcher",
                "historical replay",
                "does the watch function pass its WatchOptions through?",
                "event=\"ADDED\"",
                "name=default/c0",
                &format!("rv={got}"),
                &format!("last_rv={last}"),
            ],
        )
        .map(drop)
    });
}

#[traced_test]
#[test]
fn the_retry_watcher_logs_an_expired_rv_as_a_warning_with_the_rv() {
    // The start RV left a 4-event window: the in-stream 410 ends the watcher, and the warning
    // carries the RV that expired and the server's message.
    let start_rv = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let s = start_rv.clone();
    run(
        SimBuilder::new(103).cluster(|c| c.watch_cache_capacity = 4),
        move |kube, _| async move {
            let api: Api<ConfigMap> = Api::default_namespaced(kube);
            let start: u64 = list_rv(&api).await?.parse()?;
            for i in 0..10 {
                api.create(&PostParams::default(), &configmap(&format!("c{i}"), "v"))
                    .await?;
            }
            let mut w = RetryWatcher::from_api(api, &start.to_string(), watcher_config())?;
            assert!(matches!(w.next().await, Some(Err(Error::Expired { .. }))));
            s.set(start);
            Ok(())
        },
    );
    let rv = start_rv.get();
    logs_assert(|lines| {
        find(
            lines,
            &[
                " WARN ",
                "resourceVersion expired (410): the watch cannot resume",
                &format!("rv={rv}"),
                "status=too old resource version",
            ],
        )
        .map(drop)
    });
}
