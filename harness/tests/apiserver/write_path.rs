//! The write path real clients use, through `kube::Api` in the simulation: namespace
//! cascade, `/status` subresources, CRDs written through the API, server-side apply,
//! generation, JSON patch.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::json;

use super::*;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

#[test]
fn deleting_a_namespace_terminates_it_deletes_its_objects_and_goes_when_the_last_one_does() {
    // Proves the cascade order a client can see: Terminating, objects deleted (a finalizer
    // holds one, and the namespace with it), then the namespace.
    run(SimBuilder::new(31), |client, _| async move {
        let nss: Api<Namespace> = Api::all(client.clone());
        nss.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "team"}})),
        )
        .await?;
        let cms: Api<ConfigMap> = Api::namespaced(client, "team");
        cms.create(&PostParams::default(), &cm("plain", "1"))
            .await?;
        let mut held = cm("held", "1");
        held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        cms.create(&PostParams::default(), &held).await?;
        let answer = nss.delete("team", &DeleteParams::default()).await?;
        let ns = answer
            .left()
            .expect("a namespace delete answers the namespace");
        assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
        assert_eq!(api_code(cms.get("plain").await), 404);
        assert!(cms.get("held").await?.metadata.deletion_timestamp.is_some());
        assert!(nss.get("team").await.is_ok(), "held by its last object");
        let unhold = Patch::Json::<()>(from(
            json!([{"op": "remove", "path": "/metadata/finalizers"}]),
        ));
        cms.patch("held", &PatchParams::default(), &unhold).await?;
        assert_eq!(api_code(nss.get("team").await), 404);
        assert_eq!(
            api_code(nss.delete("default", &DeleteParams::default()).await),
            403
        );
        Ok(())
    });
}

#[test]
fn the_status_subresource_writes_only_status_and_the_main_endpoint_ignores_it() {
    // Proves the split on a pod: each endpoint changes its own part only.
    run(SimBuilder::new(32), |client, _| async move {
        let pods: Api<Pod> = Api::default_namespaced(client);
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "a"}]}});
        pods.create(&PostParams::default(), &from(pod)).await?;
        let both = json!({"spec": {"activeDeadlineSeconds": 5}, "status": {"phase": "Running"}});
        let main = pods
            .patch("p", &PatchParams::default(), &Patch::Merge(&both))
            .await?;
        assert_eq!(main.spec.unwrap().active_deadline_seconds, Some(5));
        assert_eq!(main.status.and_then(|s| s.phase), None);
        let status = json!({"spec": {"activeDeadlineSeconds": 9}, "status": {"phase": "Running"}});
        let st = pods
            .patch_status("p", &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        assert_eq!(st.status.unwrap().phase.as_deref(), Some("Running"));
        assert_eq!(st.spec.unwrap().active_deadline_seconds, Some(5));
        assert_eq!(
            st.metadata.generation,
            Some(2),
            "only the spec change counted"
        );
        Ok(())
    });
}

fn widget_crd() -> CustomResourceDefinition {
    from(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
}

#[test]
fn a_crd_created_through_the_api_is_established_served_and_removed_with_its_resources() {
    // Proves CRDs through apiextensions.k8s.io/v1: the Established condition, the new
    // endpoint (with generation), and both gone after the CRD's deletion.
    run(SimBuilder::new(33), |client, _| async move {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let crd = crds.create(&PostParams::default(), &widget_crd()).await?;
        let conditions = crd.status.unwrap().conditions.unwrap();
        assert!(conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True"));
        let gvk = GroupVersionKind::gvk("example.com", "v1", "Gadget");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "gadgets");
        let gadgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
        let g: DynamicObject = from(json!({"apiVersion": "example.com/v1", "kind": "Gadget",
                                            "metadata": {"name": "g"}, "spec": {"n": 1}}));
        let created = gadgets.create(&PostParams::default(), &g).await?;
        assert_eq!(created.metadata.generation, Some(1));
        let bumped = gadgets
            .patch(
                "g",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"n": 2}})),
            )
            .await?;
        assert_eq!(bumped.metadata.generation, Some(2));
        crds.delete("gadgets.example.com", &DeleteParams::default())
            .await?;
        assert_eq!(api_code(gadgets.get("g").await), 404);
        Ok(())
    });
}

#[test]
fn server_side_apply_conflicts_between_managers_unless_forced() {
    // Proves SSA through kube-rs: create by apply, a 409 naming the other manager, force.
    run(SimBuilder::new(34), |client, _| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let cfg = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": v}});
        let applied = api
            .patch("a", &PatchParams::apply("alice"), &Patch::Apply(cfg("1")))
            .await?;
        let managed = applied.metadata.managed_fields.unwrap();
        assert_eq!(managed[0].manager.as_deref(), Some("alice"));
        assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
        assert!(
            applied.metadata.generation.is_none(),
            "ConfigMaps have no generation"
        );
        match api
            .patch("a", &PatchParams::apply("bob"), &Patch::Apply(cfg("2")))
            .await
        {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 409);
                assert!(
                    s.message.contains("conflict with \"alice\""),
                    "{}",
                    s.message
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let forced = api
            .patch(
                "a",
                &PatchParams::apply("bob").force(),
                &Patch::Apply(cfg("2")),
            )
            .await?;
        assert_eq!(forced.data.unwrap()["k"], "2");
        Ok(())
    });
}
