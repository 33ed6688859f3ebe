//! Request and response bodies: JSON responses, `Status` error responses, the chunked watch
//! response, and reading a request body (size limit, media type, JSON, `DeleteOptions`), then checking it against the URL it was sent to.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, Limited};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::meta::metadata_mut;
use super::protobuf;
use super::resource::ResourceType;
use super::store::Preconditions;

/// Response body of the server: a full JSON document or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A complete JSON response.
pub(super) fn json_response(code: u16, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).expect("JSON values serialise");
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .expect("valid response parts")
}

/// An object response: protobuf when the client prefers it and the kind is in
/// `protobuf.rs`'s subset, JSON otherwise.
pub(super) fn object_response(code: u16, v: &Value, accept: Option<&str>) -> Response<Body> {
    match protobuf::preferred(accept)
        .then(|| protobuf::encode(v))
        .flatten()
    {
        Some(bytes) => Response::builder()
            .status(code)
            .header(header::CONTENT_TYPE, protobuf::MEDIA_TYPE)
            .body(Full::new(Bytes::from(bytes)).boxed_unsync())
            .expect("valid response parts"),
        None => json_response(code, v),
    }
}

/// A 200 chunked JSON stream (watch responses).
pub(super) fn json_stream_response(body: Body) -> Response<Body> {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body)
        .expect("valid response parts")
}

/// A `Status` error response (with `Retry-After` when the error says when to retry).
pub(super) fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after_seconds {
        r.headers_mut().insert(header::RETRY_AFTER, s.into());
    }
    r
}

/// The request's content type and whole body, at most `limit` bytes.
pub(super) async fn read_bytes<B>(
    req: Request<B>,
    limit: usize,
) -> Result<(Option<String>, Bytes), ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string());
    Ok((content_type, collect_body(req.into_body(), limit).await?))
}

/// The whole request body, at most `limit` bytes (413 beyond, 400 if the client fails it).
pub(super) async fn collect_body<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.to_string().contains("length limit") {
            ApiError::too_large(limit)
        } else {
            ApiError::bad_request(format!("reading the request body: {e}"))
        }
    })?;
    Ok(body.to_bytes())
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// A JSON request body (create, update), at most `limit` bytes.
pub(super) async fn read_json<B>(req: Request<B>, limit: usize) -> Result<Value, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (ct, bytes) = read_bytes(req, limit).await?;
    match ct.as_deref().map(media_type) {
        None | Some("application/json" | "*/*") => parse_json(&bytes),
        Some(protobuf::MEDIA_TYPE) => protobuf::decode(&bytes),
        Some(other) => Err(ApiError::unsupported_media_type(other)),
    }
}

/// A delete's optional `DeleteOptions` body (at most `limit` bytes): its preconditions,
/// whether it asks for a dry run (`dryRun: ["All"]`), and the body itself (for the
/// propagation policy).
pub(super) async fn read_delete_options<B>(
    req: Request<B>,
    limit: usize,
) -> Result<(Preconditions, bool, Option<Value>), ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (_, bytes) = read_bytes(req, limit).await?;
    if bytes.is_empty() {
        return Ok((Preconditions::default(), false, None));
    }
    let opts = parse_json(&bytes)?;
    let field = |f: &str| opts["preconditions"][f].as_str().map(str::to_string);
    let dry_run = opts["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|v| v == "All"));
    let pre = Preconditions {
        resource_version: field("resourceVersion"),
        uid: field("uid"),
    };
    Ok((pre, dry_run, Some(opts)))
}

/// The media type of a `Content-Type` value, without its parameters.
pub(super) fn media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

/// Checks a create/update body against the URL: a JSON object of type `ty`, in namespace
/// `ns` (the namespace is dropped for a cluster-scoped type).
pub(super) fn check_body(
    ty: &ResourceType,
    ns: &str,
    body: Value,
) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let str_field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (api_version, kind) = (str_field("apiVersion"), str_field("kind"));
    if !api_version.is_empty() && api_version != ty.api_version() {
        return Err(ApiError::bad_request(format!("the API version in the data ({api_version}) does not match the expected API version ({})", ty.api_version())));
    }
    if !kind.is_empty() && kind != ty.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            ty.kind
        )));
    }
    if obj.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::bad_request("metadata must be a JSON object"));
    }
    let meta = metadata_mut(&mut obj);
    let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    if ty.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(format!("the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})")));
    }
    if !ty.namespaced {
        meta.remove("namespace");
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_body_refuses_a_kind_or_namespace_other_than_the_urls() {
        let cm = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let body = |v: Value| check_body(&cm, "default", v);
        assert!(body(serde_json::json!({"kind": "ConfigMap"})).is_ok());
        assert!(body(serde_json::json!({"kind": "Secret"}))
            .unwrap_err()
            .message
            .contains("does not match the expected kind (ConfigMap)"));
        let other_ns = serde_json::json!({"metadata": {"namespace": "x"}});
        assert_eq!(body(other_ns).unwrap_err().code, 400);
        assert_eq!(body(serde_json::json!([])).unwrap_err().code, 400);
    }

    #[test]
    fn media_types_lose_their_parameters() {
        assert_eq!(
            media_type("application/json; charset=utf-8"),
            "application/json"
        );
    }
}
