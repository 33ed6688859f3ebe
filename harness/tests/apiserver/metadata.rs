//! Metadata-only requests (`as=PartialObjectMetadata`): kube's `get_metadata`,
//! `list_metadata`, `watch_metadata`, `patch_metadata` and kube-runtime's `metadata_watcher`
//! (what `Controller::owns` watches with) get `meta.k8s.io/v1` metadata, not whole objects.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
#[allow(deprecated)]
// kube 5 prefers `watcher(Api<PartialObjectMeta<K>>)`; `owns()` still uses this.
use kube::runtime::metadata_watcher;
use kube::runtime::watcher;
use kube::ResourceExt;

use super::*;

/// `kind apiVersion name` of a metadata-only answer.
fn typed(p: &PartialObjectMeta<ConfigMap>) -> String {
    let t = p.types.as_ref().expect("the answer names its type");
    format!("{} {} {}", t.kind, t.api_version, p.name_any())
}

#[test]
fn get_list_and_patch_metadata_answer_partial_object_metadata() {
    // Proves the negotiation: the answers are typed PartialObjectMetadata(List) and the raw
    // answer carries no data, only metadata.
    run(SimBuilder::new(41), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
        api.create(&PostParams::default(), &cm("a", "1")).await?;
        api.create(&PostParams::default(), &cm("b", "1")).await?;
        let got = api.get_metadata("a").await?;
        assert_eq!(typed(&got), "PartialObjectMetadata meta.k8s.io/v1 a");
        let list = api.list_metadata(&ListParams::default()).await?;
        let t = list.types.clone();
        assert_eq!(
            (t.kind.as_str(), t.api_version.as_str()),
            ("PartialObjectMetadataList", "meta.k8s.io/v1")
        );
        let items: Vec<_> = list.items.iter().map(typed).collect();
        assert_eq!(
            items,
            [
                "PartialObjectMetadata meta.k8s.io/v1 a",
                "PartialObjectMetadata meta.k8s.io/v1 b"
            ]
        );
        assert!(list.metadata.resource_version.is_some());
        let labels = serde_json::json!({"metadata": {"labels": {"x": "y"}}});
        let patched = api
            .patch_metadata("a", &PatchParams::default(), &Patch::Merge(&labels))
            .await?;
        assert_eq!(patched.labels()["x"], "y");
        let raw = http::Request::get("/api/v1/namespaces/default/configmaps/a")
            .header(
                "accept",
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            )
            .body(Vec::new())?;
        let raw: serde_json::Value = client.request(raw).await?;
        assert!(raw.get("data").is_none(), "{raw}");
        assert_eq!(raw["metadata"]["name"], "a");
        Ok(())
    });
}

#[test]
fn watch_metadata_events_carry_partial_object_metadata() {
    // Proves watch negotiation: each event's object (and a bookmark) is PartialObjectMetadata.
    run(SimBuilder::new(42), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let a = api.create(&PostParams::default(), &cm("a", "1")).await?;
        let wp = WatchParams::default().timeout(5);
        let mut w = api
            .watch_metadata(&wp, &a.resource_version().unwrap())
            .await?
            .boxed();
        api.create(&PostParams::default(), &cm("b", "1")).await?;
        api.delete("a", &Default::default()).await?;
        let mut seen = Vec::new();
        while let Some(ev) = w.try_next().await? {
            match ev {
                WatchEvent::Added(p) => seen.push(format!("ADDED {}", typed(&p))),
                WatchEvent::Deleted(p) => seen.push(format!("DELETED {}", typed(&p))),
                WatchEvent::Bookmark(b) => seen.push(format!("BOOKMARK {}", b.types.kind)),
                other => seen.push(format!("{other:?}")),
            }
        }
        assert_eq!(
            seen,
            [
                "ADDED PartialObjectMetadata meta.k8s.io/v1 b",
                "DELETED PartialObjectMetadata meta.k8s.io/v1 a",
                "BOOKMARK PartialObjectMetadata"
            ]
        );
        Ok(())
    });
}

#[test]
fn kube_runtime_metadata_watcher_lists_and_watches_metadata_only() {
    // Proves what `Controller::owns` relies on: metadata_watcher's initial list and its watch
    // events are PartialObjectMetadata objects, for objects written before and after it starts.
    run(SimBuilder::new(43), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        api.create(&PostParams::default(), &cm("before", "1"))
            .await?;
        #[allow(deprecated)]
        let mut stream = metadata_watcher(api.clone(), watcher::Config::default()).boxed();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match stream.try_next().await? {
                Some(watcher::Event::InitApply(p)) => seen.push(format!("InitApply {}", typed(&p))),
                Some(watcher::Event::InitDone) => {
                    seen.push("InitDone".into());
                    api.create(&PostParams::default(), &cm("after", "1"))
                        .await?;
                }
                _ => {}
            }
        }
        while let Some(ev) = stream.try_next().await? {
            if let watcher::Event::Apply(p) = ev {
                seen.push(format!("Apply {}", typed(&p)));
                break;
            }
        }
        assert_eq!(
            seen,
            [
                "InitApply PartialObjectMetadata meta.k8s.io/v1 before",
                "InitDone",
                "Apply PartialObjectMetadata meta.k8s.io/v1 after"
            ]
        );
        Ok(())
    });
}
