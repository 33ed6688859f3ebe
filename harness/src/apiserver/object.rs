//! Handlers of one object: create (`POST` on a collection), get, update (`PUT`), merge patch
//! and delete. They read the body, check it against the URL, and hand the write to the store.

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::Value;

use super::body::{check_body, json_response, read_delete_options, read_json, read_patch, Body};
use super::error::ApiError;
use super::merge::merge_patch;
use super::store::{ObjKey, Store, Written};
use super::ApiServer;

impl ApiServer {
    /// A request on one object's path.
    pub(super) async fn object<B>(
        &self,
        res: usize,
        ns: Option<String>,
        name: String,
        method: Method,
        req: Request<B>,
    ) -> Result<Response<Body>, ApiError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let key = ObjKey {
            res,
            ns: ns.unwrap_or_default(),
            name,
        };
        let ty = self.resource(res);
        let plural = ty.qualified_plural();
        let now = self.now();
        let limit = self.config().max_body_bytes;
        let out = match method {
            Method::GET => self.read(|s| {
                s.get(&key)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(&plural, &key.name))
            }),
            Method::PUT => {
                let body = read_json(req, limit).await?;
                let body = check_body(&ty, &key.ns, body)?;
                self.write(|s| s.update(&key, body, now))
            }
            Method::PATCH => {
                let patch = read_patch(req, limit).await?;
                self.write(|s| apply_patch(s, &key, &plural, &patch, now))
            }
            Method::DELETE => {
                let pre = read_delete_options(req, limit).await?;
                self.write(|s| s.delete(&key, &pre, now))
            }
            m => return Err(ApiError::method_not_allowed(m.as_str(), &plural)),
        }?;
        Ok(json_response(200, &out))
    }

    /// `POST` on a collection; the namespace comes from the URL or, for a namespaced type
    /// posted to the all-namespaces path, from the body.
    pub(super) fn create(
        &self,
        res: usize,
        ns: Option<String>,
        body: Value,
    ) -> Result<Written, ApiError> {
        let ty = self.resource(res);
        let ns = match (ty.namespaced, ns) {
            (true, None) => {
                let from_body = body["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                if from_body.is_empty() {
                    return Err(ApiError::bad_request("the namespace of the object is required: POST to /namespaces/{namespace}/... or set metadata.namespace"));
                }
                from_body
            }
            (_, ns) => ns.unwrap_or_default(),
        };
        let body = check_body(&ty, &ns, body)?;
        let now = self.now();
        self.write(|s| s.create(res, &ns, body, now))
    }
}

/// A JSON merge patch of the stored object, written back as an update.
fn apply_patch(
    s: &mut Store,
    key: &ObjKey,
    plural: &str,
    patch: &Value,
    now: std::time::Duration,
) -> Result<Written, ApiError> {
    let current = s
        .get(key)
        .ok_or_else(|| ApiError::not_found(plural, &key.name))?;
    let mut merged = (**current).clone();
    merge_patch(&mut merged, patch);
    match merged {
        Value::Object(m) => s.update(key, m, now),
        _ => Err(ApiError::bad_request("a merge patch must be a JSON object")),
    }
}
