//! Discovery through kube's own discovery client, with a CRD declared by the scenario.

use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope};
use kube_chaos_harness::apiserver::ResourceType;

use super::*;

fn widgets() -> ResourceType {
    ResourceType::new("example.com", "v1", "Widget", "widgets", true)
}

#[test]
fn kube_discovery_finds_core_resources_and_a_declared_crd() {
    // Proves /api, /api/v1, /apis and /apis/G/V are enough for kube's Discovery.
    run(
        SimBuilder::new(20).cluster(|c| c.crds.push(widgets())),
        |client, _| async move {
            let info = client.apiserver_version().await?;
            assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "34"));
            let d = Discovery::new(client).run().await?;
            let (ar, caps) = d
                .resolve_gvk(&kube::api::GroupVersionKind::gvk(
                    "example.com",
                    "v1",
                    "Widget",
                ))
                .expect("widget discovered");
            assert_eq!(ar.plural, "widgets");
            assert_eq!(caps.scope, Scope::Namespaced);
            let (cm, caps) = d
                .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "ConfigMap"))
                .expect("configmap discovered");
            assert_eq!(cm.plural, "configmaps");
            assert_eq!(caps.scope, Scope::Namespaced);
            let (_, ns_caps) = d
                .resolve_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Namespace"))
                .expect("namespaces");
            assert_eq!(ns_caps.scope, Scope::Cluster);
            Ok(())
        },
    );
}

#[test]
fn a_crd_is_served_to_api_dynamic_object() {
    // Proves CRD objects go through the same store: create, list, get by a dynamic API.
    run(
        SimBuilder::new(21).cluster(|c| c.crds.push(widgets())),
        |client, _| async move {
            let ar = ApiResource::from_gvk_with_plural(
                &kube::api::GroupVersionKind::gvk("example.com", "v1", "Widget"),
                "widgets",
            );
            let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
            let mut w = DynamicObject::new("w1", &ar);
            w.data = serde_json::json!({"spec": {"size": 3}});
            let created = api.create(&PostParams::default(), &w).await?;
            assert_eq!(created.data["spec"]["size"], 3);
            assert_eq!(
                created.types.as_ref().unwrap().api_version,
                "example.com/v1"
            );
            let l = api.list(&ListParams::default()).await?;
            assert_eq!(l.items.len(), 1);
            assert_eq!(api.get("w1").await?.metadata.generation, Some(1));
            Ok(())
        },
    );
}

#[test]
fn a_cluster_scoped_crd_is_discovered_as_cluster_scoped_and_served_without_a_namespace() {
    // Proves CRD scope is honoured end to end: discovery reports it, objects live at the
    // cluster path with no namespace, and the namespaced path does not exist for them.
    let gadgets = ResourceType::new("example.com", "v1", "Gadget", "gadgets", false);
    run(
        SimBuilder::new(22).cluster(|c| c.crds.push(gadgets)),
        |client, _| async move {
            let gvk = kube::api::GroupVersionKind::gvk("example.com", "v1", "Gadget");
            let d = Discovery::new(client.clone()).run().await?;
            let (ar, caps) = d.resolve_gvk(&gvk).expect("gadget discovered");
            assert_eq!(caps.scope, Scope::Cluster);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let created = api
                .create(&PostParams::default(), &DynamicObject::new("g1", &ar))
                .await?;
            assert_eq!(created.metadata.namespace, None);
            assert_eq!(api.get("g1").await?.metadata.name.as_deref(), Some("g1"));
            assert_eq!(api.list(&ListParams::default()).await?.items.len(), 1);
            let namespaced: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
            assert_eq!(api_code(namespaced.get("g1").await), 404);
            Ok(())
        },
    );
}

#[test]
fn responses_carry_no_wall_clock_date_header() {
    // Proves hyper's automatic `date` header is off: nothing in a response depends on the
    // host's clock (DESIGN.md §8).
    run(SimBuilder::new(22), |client, _| async move {
        for uri in [
            "/version",
            "/api/v1/namespaces/default/configmaps",
            "/api/v1/namespaces/default/configmaps/missing",
        ] {
            let res = client
                .send(http::Request::get(uri).body(kube::client::Body::empty())?)
                .await?;
            assert!(
                res.headers().get(http::header::DATE).is_none(),
                "{uri}: {:?}",
                res.headers()
            );
        }
        Ok(())
    });
}
