//! list: resourceVersion semantics, pagination, compaction, selectors.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, VersionMatch};
use kube::ResourceExt;

use super::*;

fn names(l: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    l.items.iter().map(|c| c.name_any()).collect()
}

#[test]
fn a_list_without_resource_version_is_consistent_and_carries_the_collection_rv() {
    // Proves the unset-RV list reads the store: it sees every write, at the latest revision.
    let server = run(SimBuilder::new(10), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        create_many(&api, 3).await?;
        let l = api.list(&ListParams::default()).await?;
        assert_eq!(names(&l), ["c0", "c1", "c2"]);
        assert_eq!(
            l.metadata.resource_version,
            Some(server.revision().to_string())
        );
        Ok(())
    });
    assert_eq!(server.stats().lists, 1);
}

#[test]
fn limit_and_continue_page_through_a_snapshot_with_remaining_item_counts() {
    // Proves pagination: pages of 2 from one revision; writes between pages are not seen.
    run(SimBuilder::new(11), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        create_many(&api, 5).await?;
        let p1 = api.list(&ListParams::default().limit(2)).await?;
        assert_eq!(names(&p1), ["c0", "c1"]);
        assert_eq!(p1.metadata.remaining_item_count, Some(3));
        api.create(&PostParams::default(), &cm("c9", "late"))
            .await?;
        let t1 = p1.metadata.continue_.clone().unwrap();
        let p2 = api
            .list(&ListParams::default().limit(2).continue_token(&t1))
            .await?;
        assert_eq!(names(&p2), ["c2", "c3"]);
        let t2 = p2.metadata.continue_.clone().unwrap();
        let p3 = api
            .list(&ListParams::default().limit(2).continue_token(&t2))
            .await?;
        assert_eq!(
            names(&p3),
            ["c4"],
            "the page list is a snapshot: c9 came later"
        );
        assert_eq!(p3.metadata.continue_, None);
        assert_eq!(p3.metadata.resource_version, p1.metadata.resource_version);
        Ok(())
    });
}

#[test]
fn a_continue_token_from_before_a_compaction_is_410_expired() {
    // Proves expired continue tokens answer 410 Expired, as after etcd compaction.
    run(SimBuilder::new(12), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        create_many(&api, 4).await?;
        let p1 = api.list(&ListParams::default().limit(2)).await?;
        api.create(&PostParams::default(), &cm("later", "x"))
            .await?;
        server.compact_all();
        let token = p1.metadata.continue_.unwrap();
        match api
            .list(&ListParams::default().limit(2).continue_token(&token))
            .await
        {
            Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
            other => panic!("expected 410 Expired, got {other:?}"),
        }
        Ok(())
    });
}

#[test]
fn an_exact_list_reads_history_until_it_is_compacted() {
    // Proves MVCC reads: an exact RV sees the old value; after compaction it is 410.
    run(SimBuilder::new(13), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let first = api.create(&PostParams::default(), &cm("a", "old")).await?;
        let rv = first.resource_version().unwrap();
        let mut next = first.clone();
        next.data.as_mut().unwrap().insert("k".into(), "new".into());
        api.replace("a", &PostParams::default(), &next).await?;
        let exact = ListParams::default().at(&rv).matching(VersionMatch::Exact);
        assert_eq!(
            api.list(&exact).await?.items[0].data.as_ref().unwrap()["k"],
            "old"
        );
        let paged = ListParams::default().at(&rv).limit(10);
        assert_eq!(
            api.list(&paged).await?.items[0].data.as_ref().unwrap()["k"],
            "old",
            "RV N with a limit is exact too"
        );
        server.compact_all();
        assert_eq!(api_code(api.list(&exact).await), 410);
        assert_eq!(
            api_code(api.list(&paged).await),
            410,
            "RV N with a limit is 410 once compacted"
        );
        Ok(())
    });
}

#[test]
fn a_not_older_than_list_for_a_future_revision_waits_3s_then_is_504_too_large() {
    // Proves the bounded wait: simulated time advances by the 3 s wait, then 504 with the
    // ResourceVersionTooLarge cause and retryAfterSeconds 1 that clients key on.
    run(SimBuilder::new(14), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let future = (server.revision() + 100).to_string();
        let before = tokio::time::Instant::now();
        match api.list(&ListParams::default().at(&future)).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 504);
                let details = s.details.expect("details");
                assert_eq!(details.causes[0].reason, "ResourceVersionTooLarge");
                assert_eq!(details.retry_after_seconds, 1);
            }
            other => panic!("expected 504, got {other:?}"),
        }
        let waited = before.elapsed();
        assert!(waited >= secs(3) && waited < secs(4), "waited {waited:?}");
        let current = server.revision().to_string();
        assert!(api.list(&ListParams::default().at(&current)).await.is_ok());
        Ok(())
    });
}

#[test]
fn a_not_older_than_list_waits_for_a_revision_that_arrives_within_3s_then_serves_it() {
    // Proves the wait ends on the write, not on the 3 s bound: a list for the next revision
    // returns as soon as a write 1 s later makes it, and it includes that write.
    run(SimBuilder::new(15), |client, server| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        create_many(&api, 1).await?;
        let next = (server.revision() + 1).to_string();
        let before = tokio::time::Instant::now();
        let writer = async {
            tokio::time::sleep(secs(1)).await;
            api.create(&PostParams::default(), &cm("late", "x")).await
        };
        let at_next = ListParams::default().at(&next);
        let (listed, written) = tokio::join!(api.list(&at_next), writer);
        let waited = before.elapsed();
        written?;
        let listed = listed?;
        assert_eq!(names(&listed), ["c0", "late"]);
        assert_eq!(listed.metadata.resource_version, Some(next));
        assert!(
            waited >= secs(1) && waited < secs(2),
            "answered when the write landed, not at the 3 s bound: {waited:?}"
        );
        Ok(())
    });
}

#[test]
fn label_selectors_support_equality_and_set_based_requirements() {
    // Proves server-side filtering for every operator family.
    run(SimBuilder::new(15), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        for (name, tier) in [("a", Some("web")), ("b", Some("db")), ("c", None)] {
            let mut c = cm(name, "v");
            if let Some(t) = tier {
                c.metadata.labels = Some([("tier".to_string(), t.to_string())].into());
            }
            api.create(&PostParams::default(), &c).await?;
        }
        let sel = |s: &'static str| {
            let api = api.clone();
            async move {
                api.list(&ListParams::default().labels(s))
                    .await
                    .map(|l| names(&l))
            }
        };
        assert_eq!(sel("tier=web").await?, ["a"]);
        assert_eq!(sel("tier!=web").await?, ["b", "c"]);
        assert_eq!(sel("tier in (web,db)").await?, ["a", "b"]);
        assert_eq!(sel("tier notin (web)").await?, ["b", "c"]);
        assert_eq!(sel("tier").await?, ["a", "b"]);
        assert_eq!(sel("!tier").await?, ["c"]);
        Ok(())
    });
}

#[test]
fn field_selectors_filter_on_metadata_name_and_namespace() {
    // Proves the two supported field selectors, across namespaces with Api::all.
    run(SimBuilder::new(16), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
        create_many(&api, 3).await?;
        let all: Api<ConfigMap> = Api::all(client);
        let by_name = all
            .list(&ListParams::default().fields("metadata.name=c1"))
            .await?;
        assert_eq!(names(&by_name), ["c1"]);
        let by_ns = all
            .list(&ListParams::default().fields("metadata.namespace=default,metadata.name!=c1"))
            .await?;
        assert_eq!(names(&by_ns), ["c0", "c2"]);
        let none = all
            .list(&ListParams::default().fields("metadata.namespace=kube-system"))
            .await?;
        assert!(none.items.is_empty());
        Ok(())
    });
}

#[test]
fn periodic_compaction_keeps_one_interval_of_history_then_old_revisions_are_410() {
    // Proves the compactor: every interval it compacts at the revision seen one interval
    // earlier, so a revision stays readable for at least one interval, then answers 410.
    run(
        SimBuilder::new(14).cluster(|c| c.compaction_interval = Some(secs(60))),
        |client, _| async move {
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            let rv = api
                .create(&PostParams::default(), &cm("a", "v1"))
                .await?
                .resource_version()
                .unwrap();
            api.create(&PostParams::default(), &cm("b", "v1")).await?;
            let exact = ListParams::default().at(&rv).matching(VersionMatch::Exact);
            tokio::time::sleep(secs(61)).await;
            assert_eq!(
                names(&api.list(&exact).await?),
                ["a"],
                "one interval later: still readable"
            );
            tokio::time::sleep(secs(60)).await;
            assert_eq!(
                api_code(api.list(&exact).await),
                410,
                "two intervals later: compacted"
            );
            Ok(())
        },
    );
}
