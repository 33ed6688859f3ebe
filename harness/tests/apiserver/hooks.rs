//! Request hooks, the fault entry point of the HTTP layer: each verdict as a client sees it.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, WatchParams};
use kube_chaos_harness::apiserver::{ApiError, Verdict};
use tokio::time::Instant;

use super::*;

#[test]
fn hooks_answer_errors_delay_requests_and_empty_watches_until_removed() {
    // Proves each verdict through kube::Api: a 429 with retryAfterSeconds, a delayed list,
    // a watch closed at once, and normal service once the hook is removed.
    run(SimBuilder::new(80), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let id = server.add_hook(|r: &kube_chaos_harness::apiserver::RequestInfo| {
            if r.is_watch {
                Verdict::EmptyWatch
            } else if r.query.contains("limit=7") {
                Verdict::Delay(secs(5))
            } else if r.method == http::Method::GET {
                let mut e = ApiError::other(429, "TooManyRequests", "slow down");
                e.retry_after_seconds = Some(3);
                Verdict::Respond(e)
            } else {
                Verdict::Pass
            }
        });
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
                assert_eq!(s.details.map(|d| d.retry_after_seconds), Some(3));
            }
            other => panic!("expected 429, got {other:?}"),
        }
        let t0 = Instant::now();
        api.list(&ListParams::default().limit(7)).await?;
        assert!(t0.elapsed() >= secs(5), "delayed by the hook");
        let t0 = Instant::now();
        let events: Vec<_> = api
            .watch(&WatchParams::default().timeout(100), "0")
            .await?
            .try_collect()
            .await?;
        assert!(
            events.is_empty() && t0.elapsed() < secs(1),
            "closed at once"
        );
        assert!(server.remove_hook(id));
        assert!(!server.remove_hook(id), "removing twice reports false");
        assert!(api.list(&ListParams::default()).await?.items.is_empty());
        Ok(())
    });
}
