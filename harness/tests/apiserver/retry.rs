//! The exported write helpers (`kube_chaos_harness::retry`) for any kind: they ride out
//! 503s, a conflicting write, a request that never answers, and stop at once on an error no
//! retry changes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube_chaos_harness::apiserver::{ApiError, RequestInfo, Verdict};
use kube_chaos_harness::retry::{self, Retry, RetryError};

use super::*;

fn secret(name: &str) -> Secret {
    serde_json::from_value(
        serde_json::json!({"metadata": {"name": name}, "stringData": {"a": "1"}}),
    )
    .expect("valid Secret")
}

fn unavailable() -> Verdict {
    Verdict::Respond(ApiError::other(503, "ServiceUnavailable", "injected"))
}

#[test]
fn every_helper_rides_out_503s_and_replace_with_rides_out_a_conflicting_write() {
    // Proves the retries: the first two requests of every write method answer 503, and the
    // first PUT finds the object changed behind its back (409); each helper still succeeds,
    // and the replace re-applies its change on the fresh object, keeping the other write.
    let counts = Arc::new([(); 4].map(|_| AtomicU32::new(0)));
    let c = counts.clone();
    let server = run(SimBuilder::new(44), move |client, server| async move {
        let writer = server.clone();
        server.add_hook(move |r: &RequestInfo| {
            let i = match r.method.as_str() {
                "POST" => 0,
                "PATCH" => 1,
                "PUT" => 2,
                "DELETE" => 3,
                _ => return Verdict::Pass,
            };
            let n = c[i].fetch_add(1, Ordering::SeqCst);
            if n < 2 {
                return unavailable();
            }
            if i == 2 && n == 2 {
                let mut theirs = writer.get_object("v1", "Secret", "default", "s").unwrap();
                Arc::make_mut(&mut theirs)["metadata"]["labels"] =
                    serde_json::json!({"by": "them"});
                writer.put_object((*theirs).clone()).unwrap();
            }
            Verdict::Pass
        });
        let api: Api<Secret> = Api::default_namespaced(client);
        retry::create(&api, &secret("s")).await?;
        let p = serde_json::json!({"metadata": {"annotations": {"patched": "yes"}}});
        retry::patch(&api, "s", &PatchParams::default(), &Patch::Merge(&p)).await?;
        let replaced = retry::replace_with(&api, "s", |s: &mut Secret| {
            s.string_data = Some([("b".to_string(), "2".to_string())].into());
        })
        .await?;
        assert_eq!(replaced.metadata.labels.unwrap()["by"], "them");
        retry::delete(&api, "s", &DeleteParams::default()).await?;
        Ok(())
    });
    assert!(server
        .get_typed::<Secret>("default", "s")
        .unwrap()
        .is_none());
    let made: Vec<u32> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    // POST, PATCH: 2 refused + 1; PUT: 2 refused + 1 conflict + 1; DELETE: 2 refused + 1.
    assert_eq!(made, [3, 3, 4, 3]);
}

#[test]
fn an_attempt_that_never_answers_is_abandoned_after_the_attempt_timeout() {
    // Proves the attempt bound: the first POST is held for two minutes; with a 5 s attempt
    // timeout the helper gives up on it and its second attempt creates the object in time.
    run(SimBuilder::new(45), |client, server| async move {
        let first = AtomicU32::new(0);
        server.add_hook(move |r: &RequestInfo| {
            if r.method == "POST" && first.fetch_add(1, Ordering::SeqCst) == 0 {
                return Verdict::Delay(secs(120));
            }
            Verdict::Pass
        });
        let api: Api<Secret> = Api::default_namespaced(client);
        let policy = Retry {
            attempt_timeout: Some(secs(5)),
            ..Retry::default()
        };
        let started = tokio::time::Instant::now();
        policy.create(&api, &secret("s")).await?;
        let took = started.elapsed();
        assert!(took >= secs(5) && took < secs(10), "took {took:?}");
        Ok(())
    });
}

#[test]
fn an_error_no_retry_changes_is_returned_at_once_and_a_missing_object_counts_as_deleted() {
    // Proves the classification: a 422 (bad name) is Refused on the first attempt, without
    // any pause; deleting an absent object is done.
    run(SimBuilder::new(46), |client, _| async move {
        let api: Api<Secret> = Api::default_namespaced(client);
        let started = tokio::time::Instant::now();
        match retry::create(&api, &secret("Not_A_Name")).await {
            Err(RetryError::Refused { op: "create", .. }) => {}
            other => panic!("expected Refused, got {other:?}"),
        }
        retry::delete(&api, "absent", &DeleteParams::default()).await?;
        assert!(started.elapsed() < secs(1), "no retry pauses");
        Ok(())
    });
}
