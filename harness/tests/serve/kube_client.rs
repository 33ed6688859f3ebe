//! A stock `kube::Client` over real TCP.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::ResourceExt;

use kube_chaos_harness::serve::ServeOptions;

use super::{start, start_with};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .unwrap()
}

async fn api() -> Api<ConfigMap> {
    let url = start().await;
    let config = kube::Config::new(url.parse().expect("url"));
    Api::default_namespaced(kube::Client::try_from(config).expect("client"))
}

#[tokio::test]
async fn a_stock_kube_client_talks_to_the_served_apiserver_over_real_tcp() {
    // Proves the server is transport-agnostic: the same code on tokio's TcpListener.
    let api = api().await;
    let created = api
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    let mut w = Box::pin(
        api.watch(
            &WatchParams::default().timeout(5),
            &created.resource_version().unwrap(),
        )
        .await
        .expect("watch"),
    );
    api.create(&PostParams::default(), &cm("b"))
        .await
        .expect("create b");
    match w.try_next().await.expect("stream") {
        Some(WatchEvent::Added(o)) => assert_eq!(o.name_any(), "b"),
        other => panic!("expected ADDED b, got {other:?}"),
    }
    let names: Vec<_> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test]
async fn delete_answers_a_success_status_for_a_config_map_and_the_object_while_finalizers_hold_it()
{
    // Proves the DELETE answer follows kube-apiserver: Status once gone, the object while it
    // lingers; kube-rs tells them apart by kind.
    let api = api().await;
    api.create(&PostParams::default(), &cm("gone"))
        .await
        .expect("create");
    let status = api
        .delete("gone", &DeleteParams::default())
        .await
        .expect("delete")
        .right()
        .expect("a Status, not the object");
    assert!(status.is_success(), "{status:?}");
    let details = status.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("gone", "configmaps")
    );
    let mut held = cm("held");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held)
        .await
        .expect("create");
    let lingering = api
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("the object, marked for deletion");
    assert!(lingering.metadata.deletion_timestamp.is_some());
}

#[tokio::test]
async fn dry_run_create_and_delete_change_nothing() {
    // Proves dryRun=All runs the write on a copy: the answer looks written, the store is not.
    let api = api().await;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answered = api.create(&dry, &cm("ghost")).await.expect("dry create");
    assert_eq!(answered.name_any(), "ghost");
    assert!(api.get_opt("ghost").await.expect("get").is_none());
    api.create(&PostParams::default(), &cm("real"))
        .await
        .expect("create");
    let dry_delete = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    api.delete("real", &dry_delete).await.expect("dry delete");
    assert!(api.get_opt("real").await.expect("get").is_some());
}

#[tokio::test]
async fn with_a_token_the_server_answers_401_without_it_and_serves_with_it() {
    // Proves `serve --token`: the bearer token is required on every request.
    let opts = ServeOptions {
        token: Some("s3cret".into()),
        ..Default::default()
    };
    let url: http::Uri = start_with(opts).await.parse().expect("url");
    let anonymous = kube::Client::try_from(kube::Config::new(url.clone())).expect("client");
    let api: Api<ConfigMap> = Api::default_namespaced(anonymous);
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let mut config = kube::Config::new(url);
    config.auth_info.token = Some("s3cret".to_string().into());
    let api: Api<ConfigMap> =
        Api::default_namespaced(kube::Client::try_from(config).expect("client"));
    api.list(&ListParams::default())
        .await
        .expect("served with the token");
}

#[tokio::test]
async fn the_served_cluster_collects_garbage_on_the_wall_clock() {
    // Proves the collector runs in `serve` (on the real clock): deleting an owner makes its
    // dependent's DELETED arrive on a watch, with no poll and no sleep.
    let api = api().await;
    let owner = api
        .create(&PostParams::default(), &cm("owner"))
        .await
        .expect("create owner");
    let mut child = cm("child");
    child.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.uid().expect("uid"),
            ..Default::default()
        },
    ]);
    let child = api
        .create(&PostParams::default(), &child)
        .await
        .expect("create child");
    let mut w = Box::pin(
        api.watch(
            &WatchParams::default().timeout(10),
            &child.resource_version().unwrap(),
        )
        .await
        .expect("watch"),
    );
    api.delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    let mut deleted = Vec::new();
    while let Some(ev) = w.try_next().await.expect("stream") {
        if let WatchEvent::Deleted(o) = ev {
            deleted.push(o.name_any());
            if deleted.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(deleted, ["owner", "child"]);
}
