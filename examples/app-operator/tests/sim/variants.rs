//! One hand-made fault schedule per bug variant: under it the variant's end state fails
//! `converged` (with the problem named), while `Correct` passes the same schedule, on both
//! runtimes.

use std::sync::atomic::{AtomicU32, Ordering};

use http::Method;
use kube_chaos_harness::apiserver::{ApiError, RequestInfo, Verdict};

use super::*;

type Story = fn(Variant, Runtime) -> Result<(), String>;

/// `Correct` passes `story`; `variant` fails it with a problem containing `expect`.
fn caught(variant: Variant, story: Story, expect: &str) {
    for runtime in RUNTIMES {
        let correct = kube_chaos_harness::seeded(7, || story(Variant::Correct, runtime));
        assert_eq!(
            correct,
            Ok(()),
            "Correct on {runtime:?} under the schedule for {variant:?}"
        );
        let buggy = kube_chaos_harness::seeded(7, || story(variant, runtime));
        let problems = buggy.expect_err("the bug is caught");
        assert!(
            problems.contains(expect),
            "{variant:?} on {runtime:?}: {problems}"
        );
    }
}

/// Gives `verdict` to the first `times` requests `matches` picks from now on.
fn first(
    server: &ApiServer,
    times: u32,
    matches: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static,
    verdict: Verdict,
) {
    let seen = AtomicU32::new(0);
    server.add_hook(move |r: &RequestInfo| {
        match matches(r) && seen.fetch_add(1, Ordering::SeqCst) < times {
            true => verdict.clone(),
            false => Verdict::Pass,
        }
    });
}

fn injected(code: u16, reason: &'static str) -> Verdict {
    Verdict::Respond(ApiError::other(code, reason, "injected by the test"))
}

fn registry_write(r: &RequestInfo) -> bool {
    r.method == Method::PUT && r.path.ends_with("/configmaps/app-registry")
}

/// App `a` created at 1 s, on a replica whose watch cache lags 2 s (until 10 s); a's first status write
/// fails with a 500, so the reconcile is retried 0.5 s later, before the cache has seen
/// the ConfigMap it created.
fn retry_behind_a_lagging_cache(variant: Variant, runtime: Runtime) -> Result<(), String> {
    let (mut sim, server) = world(2, variant, runtime, |api| async move {
        until(1.0).await;
        create(&api, "a", "v1").await
    });
    server.set_cache_lag(0, secs(2.0));
    let status_of_a =
        |r: &RequestInfo| r.method == Method::PATCH && r.path.ends_with("/apps/a/status");
    first(&server, 1, status_of_a, injected(500, "InternalError"));
    step_to(&mut sim, 10.0);
    // The lag ends (kept, every re-apply of a child would cross a second and, as the
    // simulated server bumps managedFields' time on a no-op apply, write again).
    server.set_cache_lag(0, Duration::ZERO);
    step_to(&mut sim, 60.0);
    judge(&sim, &server)
}

#[test]
fn duplicate_child_creates_a_second_configmap_when_a_retry_reads_a_lagging_cache() {
    // The retry's cached list does not show the child yet, so generateName makes another;
    // the correct operator applies the one fixed name again.
    caught(
        Variant::DuplicateChild,
        retry_behind_a_lagging_cache,
        "2 ConfigMaps controlled by it",
    );
}

/// App `a` converges; at 20 s someone deletes its ConfigMap.
fn child_deleted_by_someone_else(variant: Variant, runtime: Runtime) -> Result<(), String> {
    let (mut sim, server) = world(3, variant, runtime, |api| async move {
        until(1.0).await;
        create(&api, "a", "v1").await
    });
    step_to(&mut sim, 20.0);
    judge(&sim, &server).expect("a converged before its child is deleted");
    server
        .delete_object("v1", "ConfigMap", "default", "app-a")
        .expect("app-a exists");
    step_to(&mut sim, 60.0);
    judge(&sim, &server)
}

#[test]
fn in_memory_state_never_recreates_a_deleted_child() {
    // The deletion triggers a reconcile of `a` (it owns the ConfigMap); remembering the
    // generation as applied, the variant skips the children.
    caught(
        Variant::InMemoryState,
        child_deleted_by_someone_else,
        "App default/a: no ConfigMap controlled by it",
    );
}

/// App `a` converges; at 20 s `c` is created, and its first registry write takes 3 s to
/// be served (a slow apiserver); meanwhile `b` is created and registered.
fn registration_outrun_by_another(variant: Variant, runtime: Runtime) -> Result<(), String> {
    let (mut sim, server) = world(4, variant, runtime, |api| async move {
        until(1.0).await;
        create(&api, "a", "v1").await?;
        until(20.0).await;
        create(&api, "c", "v1").await?;
        until(20.5).await;
        create(&api, "b", "v1").await
    });
    step_to(&mut sim, 15.0);
    judge(&sim, &server).expect("a converged before the slow write");
    first(&server, 1, registry_write, Verdict::Delay(secs(3.0)));
    step_to(&mut sim, 60.0);
    judge(&sim, &server)
}

#[test]
fn stale_cache_clobbers_a_registration_made_since_its_copy_was_read() {
    // c's unconditional write of the copy it read before b registered drops b's key, and
    // b is not reconciled again; the correct operator's update is conditional on the
    // resourceVersion it read, so it gets a 409 and re-reads.
    caught(
        Variant::StaleCache,
        registration_outrun_by_another,
        "registry default/app-registry: no key for live App b",
    );
}

/// Apps `a` and `b` converge; registry writes fail with 500 from 20 s to 30 s; `b` is
/// deleted at 21 s.
fn cleanup_fails_for_a_while(variant: Variant, runtime: Runtime) -> Result<(), String> {
    let (mut sim, server) = world(5, variant, runtime, |api| async move {
        until(1.0).await;
        create(&api, "a", "v1").await?;
        create(&api, "b", "v1").await?;
        until(21.0).await;
        delete(&api, "b").await
    });
    step_to(&mut sim, 20.0);
    judge(&sim, &server).expect("a and b converged before the failures");
    let failing = server.add_hook(|r: &RequestInfo| match registry_write(r) {
        true => injected(500, "InternalError"),
        false => Verdict::Pass,
    });
    step_to(&mut sim, 30.0);
    server.remove_hook(failing);
    step_to(&mut sim, 90.0);
    let names: Vec<String> = apps(&server)
        .into_iter()
        .filter_map(|a| a.metadata.name)
        .collect();
    assert_eq!(names, ["a"], "b's deletion completes either way");
    judge(&sim, &server)
}

#[test]
fn finalizer_before_cleanup_leaks_the_registry_key_when_cleanup_fails() {
    // The variant lets `b` go before its key is removed; once the key removal fails, `b` is
    // never reconciled again. The correct operator keeps the finalizer until it succeeds.
    caught(
        Variant::FinalizerBeforeCleanup,
        cleanup_fails_for_a_while,
        "registry default/app-registry: key b names no live App",
    );
}

/// App `a` converges; every registry write conflicts (409) from 12 s to 22 s, while `b`
/// is created at 13 s.
fn conflicts_for_a_while(variant: Variant, runtime: Runtime) -> Result<(), String> {
    let (mut sim, server) = world(6, variant, runtime, |api| async move {
        until(1.0).await;
        create(&api, "a", "v1").await?;
        until(13.0).await;
        create(&api, "b", "v1").await
    });
    step_to(&mut sim, 12.0);
    judge(&sim, &server).expect("a converged before the conflicts");
    let conflicting = server.add_hook(|r: &RequestInfo| match registry_write(r) {
        true => injected(409, "Conflict"),
        false => Verdict::Pass,
    });
    step_to(&mut sim, 22.0);
    server.remove_hook(conflicting);
    step_to(&mut sim, 60.0);
    judge(&sim, &server)
}

#[test]
fn no_conflict_retry_drops_a_registration_that_met_a_conflict() {
    // The variant reports success on 409 and is not triggered again; the correct operator
    // retries (in place, then with a backoff) until the conflicts stop.
    caught(
        Variant::NoConflictRetry,
        conflicts_for_a_while,
        "registry default/app-registry: no key for live App b",
    );
}

/// Apps `a` and `b` converge; `b` is deleted at 20 s, and the operator's host crashes the
/// moment `b` is gone from the store (before its next request), restarting 5 s later.
fn crash_when_the_app_is_gone(variant: Variant, runtime: Runtime) -> Result<(), String> {
    let (mut sim, server, kill) = world_with_kill(8, variant, runtime, |api| async move {
        until(1.0).await;
        create(&api, "a", "v1").await?;
        create(&api, "b", "v1").await?;
        until(20.0).await;
        delete(&api, "b").await
    });
    step_to(&mut sim, 19.0);
    judge(&sim, &server).expect("a and b converged before the deletion");
    let b_exists = |server: &ApiServer| {
        server
            .get_object("example.kube-chaos.dev/v1", "App", "default", "b")
            .is_some()
    };
    while b_exists(&server) {
        assert!(sim.elapsed() < secs(40.0), "b is never deleted");
        sim.step().expect("the simulation steps");
    }
    // Close the operator's connections in a fixed order, then crash it (net.rs, `Kill`).
    kill.fire();
    sim.step().expect("the simulation steps");
    sim.crash("operator");
    let restart_at = sim.elapsed().as_secs_f64() + 5.0;
    step_to(&mut sim, restart_at);
    sim.bounce("operator");
    step_to(&mut sim, 60.0);
    judge(&sim, &server)
}

#[test]
fn finalizer_before_cleanup_leaks_the_registry_key_when_the_operator_crashes_in_between() {
    // The intermediate state: the variant's finalizer removal lets `b` go first, the crash
    // loses the cleanup, and after the restart nothing names `b` any more. The correct
    // operator removed the key before the finalizer, so the crash finds nothing to lose.
    caught(
        Variant::FinalizerBeforeCleanup,
        crash_when_the_app_is_gone,
        "registry default/app-registry: key b names no live App",
    );
}
