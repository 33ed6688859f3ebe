//! The garbage collector (kube-controller-manager's, in the simulated cluster): background,
//! foreground and orphan propagation through `kube::Api::delete`, dependents matched by owner
//! uid, finalizers of dependents honoured, cluster-scoped owners, a deterministic order.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;

use super::*;

/// A reference to `owner` (kind `kind`), blocking its foreground deletion when `block`.
fn owned_by<K: kube::Resource<DynamicType = ()>>(owner: &K, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into(),
        kind: K::kind(&()).into(),
        name: owner.name_any(),
        uid: owner.uid().expect("a stored object has a uid"),
        controller: None,
        block_owner_deletion: block.then_some(true),
    }
}

/// ConfigMap `name` with the given owner references and finalizers.
fn dependent(name: &str, owners: Vec<OwnerReference>, finalizers: &[&str]) -> ConfigMap {
    let mut c = cm(name, "v");
    c.metadata.owner_references = Some(owners);
    if !finalizers.is_empty() {
        c.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
    }
    c
}

/// `(simulated ms, "DELETED name")` for every removal the server recorded, in order.
fn removals(server: &ApiServer) -> Vec<(u128, String)> {
    server
        .history()
        .iter()
        .filter(|e| e.kind.as_str() == "DELETED")
        .map(|e| {
            let at = kube_chaos_harness::sim::since_start(e.at).as_millis();
            (at, e.key.name.clone())
        })
        .collect()
}

/// A cluster that records its history, its collector acting 1 s after a write (kube-chaos's
/// default is 100 ms; this one is slower than the client's round trips).
fn recording(seed: u64) -> SimBuilder {
    SimBuilder::new(seed).cluster(|c| {
        c.record_history = true;
        c.gc_delay = secs(1);
    })
}

fn names(server: &ApiServer) -> Vec<String> {
    server
        .objects("v1", "ConfigMap")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// The background story: `owner` with dependents `a`, `b` (finalizer `test/hold`) and
/// `shared` (also owned by `other`), then a background delete of `owner`.
async fn background_story(api: Api<ConfigMap>) -> TestResult {
    let pp = PostParams::default();
    let owner = api.create(&pp, &cm("owner", "v")).await?;
    let other = api.create(&pp, &cm("other", "v")).await?;
    api.create(&pp, &dependent("a", vec![owned_by(&owner, false)], &[]))
        .await?;
    api.create(
        &pp,
        &dependent("b", vec![owned_by(&owner, false)], &["test/hold"]),
    )
    .await?;
    let both = vec![owned_by(&owner, false), owned_by(&other, false)];
    api.create(&pp, &dependent("shared", both, &[])).await?;
    api.delete("owner", &DeleteParams::background()).await?;
    // The owner is gone at once; the collector has not acted yet.
    assert_eq!(api_code(api.get("owner").await), 404);
    assert!(api.get("a").await.is_ok(), "collected asynchronously");
    tokio::time::sleep(secs(3)).await;
    assert_eq!(api_code(api.get("a").await), 404);
    let b = api.get("b").await?;
    assert!(
        b.metadata.deletion_timestamp.is_some(),
        "b's finalizer holds it"
    );
    let shared = api.get("shared").await?;
    let left: Vec<_> = shared
        .owner_references()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(
        left,
        ["other"],
        "the dangling reference is removed, the object kept"
    );
    Ok(())
}

#[test]
fn background_deletes_the_owner_at_once_and_its_dependents_a_little_later() {
    // Proves the real GC's background cascade: the owner's DELETED comes first, the
    // dependent's only after the collector's delay; a finalizer holds its dependent; a
    // dependent with a living owner only loses the dangling reference.
    let server = run(recording(31), |client, _| async move {
        background_story(Api::default_namespaced(client)).await
    });
    let gone = removals(&server);
    assert_eq!(
        gone.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
        ["owner", "a"]
    );
    // The collector acts `gc_delay` (1 s here) after the event that made `a` garbage.
    let delay = gone[1].0 - gone[0].0;
    assert_eq!(delay, 1000, "collected {delay} ms after the owner");
    assert_eq!(names(&server), ["b", "other", "shared"]);
}

#[test]
fn the_same_seed_collects_in_the_same_order_at_the_same_times() {
    // Proves determinism: two runs of the same story give identical removal histories.
    let once = || {
        let server = run(recording(32), |client, _| async move {
            background_story(Api::default_namespaced(client)).await
        });
        removals(&server)
    };
    assert_eq!(once(), once());
}

#[test]
fn dependents_are_matched_by_owner_uid_so_a_missing_or_recreated_owner_is_gone() {
    // Proves the GC's uid check: a reference to a name that exists with another uid, and one
    // to an owner that never existed, are dangling; the right uid keeps its dependent.
    let server = run(SimBuilder::new(33), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let pp = PostParams::default();
        let owner = api.create(&pp, &cm("owner", "v")).await?;
        let mut impostor = owned_by(&owner, false);
        impostor.uid = "00000000-0000-4000-8000-000000000000".into();
        let mut ghost = owned_by(&owner, false);
        ghost.name = "never-was".into();
        api.create(&pp, &dependent("kept", vec![owned_by(&owner, false)], &[]))
            .await?;
        api.create(&pp, &dependent("wrong-uid", vec![impostor], &[]))
            .await?;
        api.create(&pp, &dependent("ghost", vec![ghost], &[]))
            .await?;
        tokio::time::sleep(secs(2)).await;
        Ok(())
    });
    assert_eq!(names(&server), ["kept", "owner"]);
}

#[test]
fn foreground_waits_for_blocking_dependents_then_removes_the_owner() {
    // Proves foreground propagation: the owner is marked (deletionTimestamp and the
    // foregroundDeletion finalizer) and stays while a blockOwnerDeletion dependent is held by
    // its finalizer; a non-blocking dependent goes without holding it; releasing the
    // blocking one lets the owner go, after it.
    let server = run(recording(34), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let pp = PostParams::default();
        let owner = api.create(&pp, &cm("owner", "v")).await?;
        api.create(
            &pp,
            &dependent("blocks", vec![owned_by(&owner, true)], &["test/hold"]),
        )
        .await?;
        api.create(&pp, &dependent("free", vec![owned_by(&owner, false)], &[]))
            .await?;
        api.delete("owner", &DeleteParams::foreground()).await?;
        let marked = api.get("owner").await?;
        assert!(marked.metadata.deletion_timestamp.is_some());
        assert_eq!(marked.finalizers(), ["foregroundDeletion"]);
        tokio::time::sleep(secs(3)).await;
        assert_eq!(api_code(api.get("free").await), 404);
        assert!(api
            .get("blocks")
            .await?
            .metadata
            .deletion_timestamp
            .is_some());
        assert!(api.get("owner").await.is_ok(), "blocked by `blocks`");
        let release = serde_json::json!({"metadata": {"finalizers": null}});
        api.patch("blocks", &PatchParams::default(), &Patch::Merge(&release))
            .await?;
        tokio::time::sleep(secs(3)).await;
        assert_eq!(api_code(api.get("owner").await), 404);
        Ok(())
    });
    let order: Vec<_> = removals(&server).into_iter().map(|(_, n)| n).collect();
    assert_eq!(order, ["free", "blocks", "owner"]);
}

#[test]
fn orphan_removes_the_references_then_the_owner_and_keeps_the_dependents() {
    // Proves orphan propagation: the owner carries the orphan finalizer until the collector
    // has stripped its dependents' references to it; the dependents live on.
    let server = run(SimBuilder::new(35), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let pp = PostParams::default();
        let owner = api.create(&pp, &cm("owner", "v")).await?;
        api.create(&pp, &dependent("a", vec![owned_by(&owner, true)], &[]))
            .await?;
        api.delete("owner", &DeleteParams::orphan()).await?;
        assert_eq!(api.get("owner").await?.finalizers(), ["orphan"]);
        tokio::time::sleep(secs(2)).await;
        assert_eq!(api_code(api.get("owner").await), 404);
        let a = api.get("a").await?;
        assert!(a.metadata.owner_references.is_none(), "{a:?}");
        Ok(())
    });
    assert_eq!(names(&server), ["a"]);
}

#[test]
fn a_cluster_scoped_owner_collects_its_namespaced_dependents() {
    // Proves owner lookup by scope: a Node owns a ConfigMap in `default`; deleting the node
    // (default policy: background) collects it; a reference to a namespaced kind from a
    // cluster-scoped object is unresolvable and kept, as the real GC keeps it.
    let server = run(SimBuilder::new(36), |client, _| async move {
        let nodes: Api<Node> = Api::all(client.clone());
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let pp = PostParams::default();
        let node: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n1"}}))?;
        let node = nodes.create(&pp, &node).await?;
        let owner = api.create(&pp, &cm("owner", "v")).await?;
        api.create(
            &pp,
            &dependent("on-node", vec![owned_by(&node, false)], &[]),
        )
        .await?;
        let mut odd: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n2"}}))?;
        odd.metadata.owner_references = Some(vec![owned_by(&owner, false)]);
        nodes.create(&pp, &odd).await?;
        api.delete("owner", &DeleteParams::default()).await?;
        nodes.delete("n1", &DeleteParams::default()).await?;
        tokio::time::sleep(secs(2)).await;
        assert_eq!(api_code(api.get("on-node").await), 404);
        assert!(nodes.get("n2").await.is_ok(), "unresolvable owner: kept");
        Ok(())
    });
    let left: BTreeMap<_, _> = server
        .objects("v1", "Node")
        .iter()
        .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), ()))
        .collect();
    assert_eq!(left.keys().collect::<Vec<_>>(), ["n2"]);
}

#[test]
fn a_bad_propagation_policy_is_a_422_naming_the_value() {
    // Proves DeleteOptions validation: an unknown policy is refused before anything changes.
    run(SimBuilder::new(37), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
        api.create(&PostParams::default(), &cm("a", "v")).await?;
        let raw = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Sideways"});
        let req = http::Request::delete("/api/v1/namespaces/default/configmaps/a")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&raw)?)?;
        assert_eq!(
            api_code(client.request::<serde_json::Value>(req).await),
            422
        );
        assert!(api.get("a").await.is_ok());
        Ok(())
    });
}
