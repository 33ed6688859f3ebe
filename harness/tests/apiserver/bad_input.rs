//! Bad input: every malformed request gets a `Status` error naming what is wrong; none panics
//! or hangs the server, which keeps serving afterwards.

use http::Request;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

use super::*;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// Sends a raw request; returns (code, reason, message) of the Status error it must produce.
async fn status_of(client: &kube::Client, req: Request<Vec<u8>>) -> (u16, String, String) {
    let what = format!("{} {}", req.method(), req.uri());
    match client.request_text(req).await {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("{what}: expected a Status error, got {other:?}"),
    }
}

fn get(uri: &str) -> Request<Vec<u8>> {
    Request::get(uri).body(Vec::new()).expect("valid request")
}

fn with_body(method: &str, uri: &str, content_type: &str, body: &str) -> Request<Vec<u8>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .expect("valid request")
}

#[test]
fn malformed_requests_get_the_right_status_and_the_server_keeps_serving() {
    let server = run(
        SimBuilder::new(70).cluster(|c| c.max_body_bytes = 4096),
        |client, _| async move {
            let json = "application/json";
            let cases: Vec<(Request<Vec<u8>>, u16, &str, &str)> = vec![
                (
                    with_body("POST", CMS, json, "{\"metadata\": {\"name\": "),
                    400,
                    "BadRequest",
                    "json",
                ),
                (
                    with_body("POST", CMS, json, "[1, 2]"),
                    400,
                    "BadRequest",
                    "object",
                ),
                (
                    get("/api/v1/namespaces/default/widgets"),
                    404,
                    "NotFound",
                    "widgets",
                ),
                (
                    get("/apis/example.com/v1/widgets"),
                    404,
                    "NotFound",
                    "example.com",
                ),
                (
                    get(&format!("{CMS}?resourceVersion=abc")),
                    400,
                    "BadRequest",
                    "abc",
                ),
                (get(&format!("{CMS}?limit=-1")), 422, "Invalid", "limit"),
                (get(&format!("{CMS}?limit=ten")), 400, "BadRequest", "limit"),
                (
                    get(&format!("{CMS}?watch=maybe")),
                    400,
                    "BadRequest",
                    "maybe",
                ),
                (
                    get(&format!("{CMS}?resourceVersionMatch=Foo&resourceVersion=1")),
                    422,
                    "Invalid",
                    "Foo",
                ),
                (
                    get(&format!("{CMS}?timeoutSeconds=-5&watch=true")),
                    422,
                    "Invalid",
                    "timeoutSeconds",
                ),
                (
                    get(&format!("{CMS}?labelSelector=app%20in%20(a")),
                    400,
                    "BadRequest",
                    "app in (a",
                ),
                (
                    get(&format!("{CMS}?fieldSelector=spec.nodeName%3Dx")),
                    400,
                    "BadRequest",
                    "spec.nodeName",
                ),
                (
                    get(&format!("{CMS}?continue=garbage")),
                    400,
                    "BadRequest",
                    "continue",
                ),
                (
                    with_body("PATCH", &format!("{CMS}/x"), "application/xml", "<patch/>"),
                    415,
                    "UnsupportedMediaType",
                    "application/xml",
                ),
                (
                    with_body("PUT", CMS, json, "{}"),
                    405,
                    "MethodNotAllowed",
                    "PUT",
                ),
                (
                    with_body(
                        "POST",
                        CMS,
                        json,
                        &format!("{{\"data\": {{\"k\": \"{}\"}}}}", "x".repeat(5000)),
                    ),
                    413,
                    "RequestEntityTooLarge",
                    "4096",
                ),
                (
                    with_body(
                        "POST",
                        CMS,
                        json,
                        r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}"#,
                    ),
                    400,
                    "BadRequest",
                    "Secret",
                ),
                (
                    with_body("POST", CMS, json, r#"{"metadata": {"name": "Not_A_Name"}}"#),
                    422,
                    "Invalid",
                    "Not_A_Name",
                ),
                (
                    with_body(
                        "POST",
                        CMS,
                        json,
                        r#"{"metadata": {"name": "x", "namespace": "other"}}"#,
                    ),
                    400,
                    "BadRequest",
                    "namespace",
                ),
            ];
            let mut wrong = Vec::new();
            for (req, code, reason, needle) in cases {
                let what = format!("{} {}", req.method(), req.uri());
                let (c, r, m) = status_of(&client, req).await;
                if (c, r.as_str()) != (code, reason)
                    || !m.to_lowercase().contains(&needle.to_lowercase())
                {
                    wrong.push(format!(
                        "{what}: got {c} {r} {m:?}, want {code} {reason} mentioning {needle:?}"
                    ));
                }
            }
            assert!(wrong.is_empty(), "{wrong:#?}");
            // Still serving, nothing was stored by the bad requests.
            let api: Api<ConfigMap> = Api::default_namespaced(client);
            assert!(api.list(&ListParams::default()).await?.items.is_empty());
            Ok(())
        },
    );
    assert_eq!(server.stats().requests, 20);
}
