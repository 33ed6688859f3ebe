//! CRUD through `kube::Api`: errors are `Status` objects with the right codes.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use super::*;

#[test]
fn create_get_update_and_delete_a_configmap_through_kube_api() {
    // Proves the full round trip: each write's RV is newer, reads return what was written.
    run(SimBuilder::new(1), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let created = api.create(&PostParams::default(), &cm("a", "1")).await?;
        let rv1: u64 = created.metadata.resource_version.clone().unwrap().parse()?;
        assert!(created.metadata.uid.is_some());
        assert_eq!(
            created
                .metadata
                .creation_timestamp
                .as_ref()
                .unwrap()
                .0
                .to_string(),
            "2025-01-01T00:00:00Z"
        );
        let mut got = api.get("a").await?;
        got.data.as_mut().unwrap().insert("k".into(), "2".into());
        let updated = api.replace("a", &PostParams::default(), &got).await?;
        let rv2: u64 = updated.metadata.resource_version.clone().unwrap().parse()?;
        assert!(rv2 > rv1);
        assert_eq!(api.get("a").await?.data.unwrap()["k"], "2");
        api.delete("a", &DeleteParams::default()).await?;
        assert_eq!(api_code(api.get("a").await), 404);
        Ok(())
    });
}

#[test]
fn create_twice_is_already_exists_and_get_of_a_missing_object_is_not_found() {
    // Proves the 409/404 Status errors carry reason and code as kube-apiserver's do.
    run(SimBuilder::new(2), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        api.create(&PostParams::default(), &cm("a", "1")).await?;
        match api.create(&PostParams::default(), &cm("a", "1")).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"))
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        match api.get("missing").await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
                assert_eq!(s.message, "configmaps \"missing\" not found");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        Ok(())
    });
}

#[test]
fn update_with_a_stale_resource_version_is_a_409_conflict() {
    // Proves optimistic concurrency: the second writer holding the old RV loses.
    run(SimBuilder::new(3), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let first = api.create(&PostParams::default(), &cm("a", "1")).await?;
        let mut winner = first.clone();
        winner
            .data
            .as_mut()
            .unwrap()
            .insert("k".into(), "winner".into());
        api.replace("a", &PostParams::default(), &winner).await?;
        let mut loser = first;
        loser
            .data
            .as_mut()
            .unwrap()
            .insert("k".into(), "loser".into());
        match api.replace("a", &PostParams::default(), &loser).await {
            Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
            other => panic!("expected Conflict, got {other:?}"),
        }
        assert_eq!(api.get("a").await?.data.unwrap()["k"], "winner");
        Ok(())
    });
}

#[test]
fn merge_patch_changes_only_the_named_fields() {
    // Proves RFC 7386 semantics end to end: one key set, one removed, the rest kept.
    run(SimBuilder::new(4), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut c = cm("a", "1");
        c.data.as_mut().unwrap().insert("gone".into(), "x".into());
        api.create(&PostParams::default(), &c).await?;
        let patch = serde_json::json!({"data": {"new": "y", "gone": null}, "metadata": {"labels": {"l": "v"}}});
        let p = api
            .patch("a", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let data = p.data.unwrap();
        assert_eq!(
            (data["k"].as_str(), data["new"].as_str(), data.get("gone")),
            ("1", "y", None)
        );
        assert_eq!(p.metadata.labels.unwrap()["l"], "v");
        Ok(())
    });
}

#[test]
fn delete_with_a_finalizer_sets_deletion_timestamp_until_the_finalizer_is_removed() {
    // Proves finalizer semantics: delete marks, the last finalizer's removal deletes.
    run(SimBuilder::new(5), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut c = cm("a", "1");
        c.metadata.finalizers = Some(vec!["kube-chaos.io/hold".into()]);
        api.create(&PostParams::default(), &c).await?;
        api.delete("a", &DeleteParams::default()).await?;
        let marked = api.get("a").await?;
        assert!(marked.metadata.deletion_timestamp.is_some());
        let clear = serde_json::json!({"metadata": {"finalizers": null}});
        api.patch("a", &PatchParams::default(), &Patch::Merge(&clear))
            .await?;
        assert_eq!(api_code(api.get("a").await), 404);
        Ok(())
    });
}

#[test]
fn removing_one_of_two_finalizers_keeps_the_object_and_no_new_finalizer_may_be_added() {
    // Proves only the last finalizer's removal deletes: with two, removing one keeps the
    // object marked (same deletionTimestamp); and, as in kube-apiserver, a finalizer cannot
    // be added to an object that is being deleted.
    run(SimBuilder::new(7), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let mut c = cm("a", "1");
        c.metadata.finalizers = Some(vec!["x.io/one".into(), "x.io/two".into()]);
        api.create(&PostParams::default(), &c).await?;
        api.delete("a", &DeleteParams::default()).await?;
        let marked = api.get("a").await?;
        let ts = marked.metadata.deletion_timestamp.clone();
        assert!(ts.is_some());
        let keep_two = serde_json::json!({"metadata": {"finalizers": ["x.io/two"]}});
        let after = api
            .patch("a", &PatchParams::default(), &Patch::Merge(&keep_two))
            .await?;
        assert_eq!(
            after.metadata.finalizers,
            Some(vec!["x.io/two".to_string()])
        );
        assert_eq!(after.metadata.deletion_timestamp, ts, "still being deleted");
        let add = serde_json::json!({"metadata": {"finalizers": ["x.io/two", "x.io/three"]}});
        match api
            .patch("a", &PatchParams::default(), &Patch::Merge(&add))
            .await
        {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
                let cause = &s.details.expect("details").causes[0];
                assert_eq!(
                    (cause.reason.as_str(), cause.field.as_str()),
                    ("FieldValueForbidden", "metadata.finalizers")
                );
                assert!(
                    cause.message.contains(r#"["x.io/three"]"#),
                    "{}",
                    cause.message
                );
            }
            other => panic!("expected 422 Invalid, got {other:?}"),
        }
        let none = serde_json::json!({"metadata": {"finalizers": []}});
        api.patch("a", &PatchParams::default(), &Patch::Merge(&none))
            .await?;
        assert_eq!(api_code(api.get("a").await), 404);
        Ok(())
    });
}

#[test]
fn generation_counts_spec_changes_of_a_pod_but_not_label_changes() {
    // Proves generation is maintained: bumped by spec edits, not by metadata edits.
    run(SimBuilder::new(6), |client, _| async move {
        let api: Api<Pod> = Api::default_namespaced(client);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))?;
        let p = api.create(&PostParams::default(), &pod).await?;
        assert_eq!(p.metadata.generation, Some(1));
        let labels = serde_json::json!({"metadata": {"labels": {"a": "b"}}});
        let p = api
            .patch("p", &PatchParams::default(), &Patch::Merge(&labels))
            .await?;
        assert_eq!(p.metadata.generation, Some(1));
        let spec = serde_json::json!({"spec": {"activeDeadlineSeconds": 5}});
        let p = api
            .patch("p", &PatchParams::default(), &Patch::Merge(&spec))
            .await?;
        assert_eq!(p.metadata.generation, Some(2));
        Ok(())
    });
}
