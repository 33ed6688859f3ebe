//! The correct operator converges on both runtimes for a small workload with no faults.

use super::*;

/// Creates `a` and `b`, updates `a`, deletes `b`.
async fn small_workload(api: Api<App>) -> TestResult {
    until(1.0).await;
    create(&api, "a", "v1").await?;
    create(&api, "b", "v1").await?;
    until(15.0).await;
    update(&api, "a", "v2").await?;
    until(25.0).await;
    delete(&api, "b").await
}

fn converges(runtime: Runtime) {
    let server = kube_chaos_harness::seeded(1, || {
        let (mut sim, server) = world(1, Variant::Correct, runtime, small_workload);
        step_to(&mut sim, 12.0);
        // Before the update both Apps are done.
        assert_eq!(judge(&sim, &server), Ok(()), "{runtime:?} at 12 s");
        step_to(&mut sim, 60.0);
        assert_eq!(judge(&sim, &server), Ok(()), "{runtime:?}");
        server
    });
    let apps = apps(&server);
    let names: Vec<String> = apps
        .iter()
        .map(|a| a.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a"], "b's finalizer ran and let it go");
    let a = &apps[0];
    assert_eq!(a.metadata.generation, Some(2));
    assert_eq!(a.spec.data["k"], "v2");
    assert_eq!(
        a.metadata.finalizers,
        Some(vec![app_operator::FINALIZER.to_string()])
    );
}

#[test]
fn the_correct_operator_converges_on_kube_runtime() {
    // judge() is `converged` over the server's objects: children with a's updated data, a
    // ready status at generation 2, and a registry holding a alone once b is deleted.
    converges(Runtime::KubeRuntime);
}

#[test]
fn the_correct_operator_converges_on_our_runtime() {
    // The same workload and judgement, reconciled by kube-chaos's controller.
    converges(Runtime::Ours);
}
